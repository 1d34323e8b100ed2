"""Training loops (teacher, distillation) and the helpers they share."""
