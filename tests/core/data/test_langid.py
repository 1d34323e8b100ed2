from core.data.langid import detect_language
from core.data.lexicon import default_lexicon


def test_detects_each_language_of_short_clinical_text() -> None:
    lex = default_lexicon()
    cases = {
        "Paciente com carcinoma de mama, HER2 positivo, sem metástases.": "pt",
        "Paciente con cáncer de pulmón, mutación de EGFR, sin metástasis.": "es",
        "Patient with metastatic breast cancer and HER2 amplification.": "en",
        "Patientin mit Mammakarzinom und HER2-Amplifikation, ohne Metastasen.": "de",
        "Patiente avec un cancer du sein et une amplification de HER2.": "fr",
        "Mgonjwa ana saratani ya matiti na hakuna mabadiliko ya EGFR.": "sw",
        "मेटास्टैटिक स्तन कैंसर, HER2 एम्प्लीफिकेशन": "hi",
    }
    for text, lang in cases.items():
        assert detect_language(text, lex) == lang, text


def test_nothing_recognisable_gives_empty() -> None:
    lex = default_lexicon()
    assert detect_language("!!! ??? 🙂🙂", lex) == ""
    assert detect_language("", lex) == ""
