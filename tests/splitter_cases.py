"""Hard cases for sentence splitters, shared by the splitter tests and comparisons.

Each :class:`SplitterCase` holds a text and its gold split: the sentences a
careful human reader would mark, each the exact (trimmed) substring of the
text, in order. Between two gold sentences there is only whitespace.

Where a case is ambiguous, ``note`` says which reading the gold follows. The
cases are meant to be hard: not every splitter is expected to pass them all.
"""

from __future__ import annotations

from seqopt_core import LabeledText, Span

#: One text and its gold sentences (the library's labelled-text record).
SplitterCase = LabeledText


def _case(id: str, sentences: tuple[str, ...], note: str, text: str | None = None) -> SplitterCase:
    """A case whose text is ``text``, or the gold sentences joined by one space."""
    return SplitterCase(id, text if text is not None else " ".join(sentences), sentences, note)


HARD_CASES: list[SplitterCase] = [
    # --- abbreviations and titles ---------------------------------------------------
    _case("titles", (
        "Mr. and Mrs. Dursley met Dr. Watson and Prof. Lee at noon.",
        "They talked for hours.",
    ), "titles before names never end a sentence"),
    _case("saint-vs-street", (
        "We drove from St. Louis to St. Paul in a day.",
        "The hotel was on Main St.",
        "The rooms were small.",
    ), "St. before a name is Saint; at the end of a street name followed by 'The' it ends "
       "the sentence"),
    _case("latin-abbreviations", (
        "Bring fruit, e.g. apples or pears, and drinks, i.e. water.",
        "Snacks, cookies, etc. are welcome too.",
        "We also need plates, cups, napkins, etc.",
        "Then we leave.",
    ), "e.g./i.e. never end a sentence; etc. ends one only when a capital follows"),
    _case("versus", (
        "The case Roe v. Wade is famous, as is Brown vs. Board of Education.",
        "Both went to the Supreme Court.",
    ), "v. and vs. are never sentence ends"),
    _case("us-acronym", (
        "The U.S. Senate passed the bill.",
        "Prices rose in the U.K. and in the U.S.",
        "They fell elsewhere.",
    ), "a dotted acronym ends a sentence only before a common sentence opener ('They'), "
       "not before a proper noun ('Senate')"),
    _case("company-suffixes", (
        "She joined Acme Inc. in 2019 and left Globex Ltd. last year.",
        "Her brother works at Initech Corp.",
        "He likes it there.",
    ), "Inc./Ltd. mid-sentence before lowercase or digits; Corp. ends the sentence before 'He'"),
    _case("jr-sr", (
        "Martin Luther King Jr. was born in Atlanta.",
        "His father was Martin Luther King Sr.",
        "Both were pastors.",
    ), "Jr./Sr. end a sentence only before a capital"),
    _case("number-prefixes", (
        "See Fig. 3 and Table No. 5 on p. 12 of Vol. 2 for details.",
        "The data is public.",
    ), "No./Fig./p./Vol. before a digit never end a sentence"),
    _case("months", (
        "The meeting moved from Jan. 5, 2024 to Feb. 12 and then to Sept. 3.",
        "Nobody complained.",
    ), "month abbreviations before a day number"),
    _case("no-as-word", (
        "He asked if I was ready and I said no.",
        "Then he left.",
    ), "'no.' before a capital is the word no ending a sentence, not No. 5"),
    # --- initials -------------------------------------------------------------------
    _case("initials", (
        "J. R. R. Tolkien wrote The Hobbit.",
        "George W. Bush read it in 2001.",
    ), "initials never end a sentence before a surname"),
    _case("initials-joined", (
        "The author J.K. Rowling met E. B. White's editor.",
        "It was brief.",
    ), "joined and spaced initials"),
    _case("letter-at-sentence-end", (
        "We chose option B.",
        "The other options were worse.",
    ), "a single capital letter before 'The' ends the sentence"),
    # --- numbers, times ------------------------------------------------------------
    _case("decimals-versions", (
        "Pi is about 3.14 and e is about 2.718.",
        "Version v2.0.1 fixed it; 1.0 did not.",
    ), "periods inside numbers and versions"),
    _case("money-percent", (
        "The coffee cost $3.50, up 12.5% from last year.",
        "The total was 1,000.50 dollars.",
        "Sales fell 3%.",
        "Nobody was surprised.",
    ), "currency, thousands separators, percentages"),
    _case("times-am-pm", (
        "We met at 10:45 a.m. on Monday and left at 3 p.m. sharp.",
        "The train arrived at 10:45 a.m.",
        "We left soon after.",
    ), "a.m./p.m. before lowercase continue the sentence; before a capital they end it "
       "(rule: a capitalised word after a.m./p.m. starts a new sentence)"),
    _case("am-then-we", (
        "We got there at 10:45 a.m.",
        "We left at noon.",
    ), "GOLD BY JUDGEMENT: the brief's 'at 10:45 a.m. We left': a.m. before a capitalised "
       "word ends the sentence"),
    _case("phd", (
        "She earned a Ph.D. in physics.",
        "Her thesis was long.",
    ), "Ph.D. before lowercase"),
    _case("am-then-capital", (
        "The store opens at 9 a.m.",
        "Customers line up early.",
    ), "a.m. followed by a capitalised word ends the sentence"),
    _case("dates", (
        "The deadline is Jan. 5, 2024.",
        "It was 12/31/2023 before that, i.e. last year.",
    ), "dates with a month abbreviation and with slashes"),
    # --- ellipses -------------------------------------------------------------------
    _case("ellipsis-lowercase", (
        "Wait... what?",
        "I thought... never mind.",
    ), "an ellipsis before lowercase does not end a sentence"),
    _case("ellipsis-capital", (
        "He paused...",
        "Then he left.",
        "She waited\u2026",
        "Nobody came.",
    ), "three dots or the ellipsis character before a capital end the sentence"),
    _case("spaced-ellipsis", (
        "He stopped . . .",
        "Then he ran.",
    ), "a spaced ellipsis stays whole"),
    # --- ! and ? ------------------------------------------------------------------
    _case("exclaim-question", (
        "Stop!",
        "Did you hear that?!",
        "Run!!!",
        "Why??",
        "Because.",
    ), "runs of ! and ? end a sentence"),
    # --- quotes and brackets --------------------------------------------------------
    _case("closing-quote", (
        'He said "Stop."',
        "Then he left.",
    ), "the period is inside the quote; the closing quote stays with the first sentence"),
    _case("quote-exclaim-capital", (
        '"Fire!"',
        "The crowd ran.",
        'He asked (why?) and left.',
    ), "a quoted exclamation before a capital ends a sentence; '?)' before lowercase does not"),
    _case("mixed-unicode-punctuation", (
        "\u201cWait\u2026\u201d she whispered \u2014 \u2018it\u2019s here.\u2019",
        "\u00bfQu\u00e9?",
        "Nothing.",
    ), "\u2026 \u201c \u201d \u2019 \u2014 \u00bf together; the ellipsis inside the quote "
       "before lowercase 'she' does not end the sentence"),
    _case("dialogue", (
        '"Are you coming?" she asked.',
        '"No," he said.',
        '"Not today."',
    ), "a ? or ! inside quotes before a lowercase dialogue tag does not end the sentence"),
    _case("smart-quotes", (
        "\u201cReally?\u201d she asked.",
        "\u2018Yes,\u2019 he said.",
        "\u201cI\u2019m sure.\u201d",
        "They left together.",
    ), "curly quotes and apostrophes"),
    _case("guillemets", (
        "Il a dit \u00abNon.\u00bb",
        "Then he left.",
    ), "a closing guillemet stays with its sentence"),
    _case("quote-inside-sentence", (
        'She called it "the best day ever" and smiled.',
        "I agreed.",
    ), "a quotation in the middle of a sentence"),
    _case("parentheses", (
        "The results (see Table 2) were clear.",
        "(The raw data is online.)",
        "We moved on.",
    ), "a parenthesised sentence keeps its closing bracket"),
    _case("square-bracket-sentence", (
        "The sign read: [Closed for renovation.]",
        "We went home.",
    ), "a closing square bracket after the period stays with the sentence"),
    _case("paren-after-period", (
        "He finished the race (in record time.)",
        "Everyone cheered.",
    ), "')' after the period"),
    # --- URLs, e-mail, code ---------------------------------------------------------
    _case("urls", (
        "Visit https://example.com/a.b?c=d.",
        "Or try www.example.org for the docs.",
    ), "never split inside a URL; a final period after it ends the sentence"),
    _case("email", (
        "Write to john.doe@mail.example.com for help.",
        "He answers fast.",
    ), "periods inside an e-mail address"),
    _case("code-like", (
        "Call os.path.join(a, b) to build the path.",
        "Then run pip install -e . from the root.",
        "It takes a minute.",
    ), "dotted names and a lone '.' argument in a command"),
    # --- lists -----------------------------------------------------------------------
    _case("inline-numbered-list", (
        "1. First item",
        "2. Second item",
        "3. Third item",
    ), "GOLD BY JUDGEMENT: an inline numbered list; each item is spoken as its own unit and "
       "'1.' is never a sentence on its own"),
    _case("line-numbered-list", (
        "Shopping list:",
        "1. Buy milk",
        "2. Walk the dog.",
        "3. Call Mom",
    ), "line-start markers start a new sentence and stay with their item",
       text="Shopping list:\n1. Buy milk\n2. Walk the dog.\n3. Call Mom"),
    _case("bullets", (
        "Pack these:",
        "- a tent",
        "- two sleeping bags",
        "* a stove",
    ), "bullets at line starts", text="Pack these:\n- a tent\n- two sleeping bags\n* a stove"),
    _case("numbers-ending-sentences", (
        "The final score was 3 to 2.",
        "Then it rained.",
    ), "a number ending a sentence mid-line is not a list marker"),
    # --- event tags ------------------------------------------------------------------
    _case("event-tags", (
        "That was hilarious! [laughter]",
        "Anyway, let's continue [clear_throat] with the talk.",
    ), "a tag after a sentence end stays with that sentence; a tag mid-sentence never ends it"),
    _case("tag-at-start", (
        "[sigh] I don't know.",
        "Maybe [laughter] tomorrow.",
    ), "a tag opening a text or sitting mid-sentence"),
    _case("tag-with-space", (
        "Hold on [clear throat] I need water.",
        "Thanks.",
    ), "a multi-word tag is never split and never a sentence end"),
    # --- newlines, headings, layout --------------------------------------------------
    _case("wrapped-lines", (
        "This line is wrapped\nin the middle of a sentence\nand goes on.",
        "This one ends here.",
    ), "a single newline without terminal punctuation is not a boundary",
       text="This line is wrapped\nin the middle of a sentence\nand goes on.\nThis one ends here."),
    _case("heading-blank-line", (
        "Chapter One",
        "It was a dark and stormy night.",
    ), "a heading without punctuation ends at the blank line",
       text="Chapter One\n\nIt was a dark and stormy night."),
    _case("markdown-heading", (
        "# Getting started",
        "Install the package first.",
        "## Usage",
        "Run it.",
    ), "markdown headings are their own sentences even with single newlines",
       text="# Getting started\nInstall the package first.\n## Usage\nRun it."),
    _case("spaces-tabs", (
        "First sentence.",
        "Second\tsentence with  double  spaces.",
        "Third.",
    ), "multiple spaces and tabs", text="First sentence.   Second\tsentence with  double  "
       "spaces.\t\tThird."),
    _case("semicolons-colons", (
        "I came; I saw; I conquered: that was the plan.",
        "It worked.",
    ), "semicolons and colons are not sentence boundaries"),
    _case("no-punctuation", (
        "this text has no punctuation at all",
    ), "a text without terminal punctuation is one sentence"),
    # --- unicode ---------------------------------------------------------------------
    _case("spanish", (
        "\u00bfD\u00f3nde est\u00e1s?",
        "\u00a1Aqu\u00ed!",
        "Ven r\u00e1pido.",
    ), "inverted question and exclamation marks open sentences"),
    _case("em-dash", (
        "She hesitated \u2014 then spoke.",
        "He listened\u2014silently.",
    ), "dashes are not sentence boundaries"),
    _case("cjk", (
        "\u4eca\u5929\u5929\u6c14\u5f88\u597d\u3002",
        "\u6211\u4eec\u53bb\u516c\u56ed\u5427\uff01",
        "\u4f60\u6765\u5417\uff1f",
    ), "CJK full stop and full-width marks end sentences without a following space",
       text="\u4eca\u5929\u5929\u6c14\u5f88\u597d\u3002\u6211\u4eec\u53bb\u516c\u56ed\u5427"
            "\uff01\u4f60\u6765\u5417\uff1f"),
    _case("emoji", (
        "I passed the exam! \U0001f389",
        "Let's celebrate tonight.",
        "Good morning \u2600\ufe0f how are you?",
    ), "an emoji right after a sentence end belongs to that sentence"),
    _case("all-caps", (
        "WARNING.",
        "DO NOT ENTER THE U.S. NAVY AREA.",
        "THIS MEANS YOU!",
    ), "shouted text; U.S. before NAVY is not an end"),
    _case("addresses", (
        "Send it to 42 Main St., Suite 100, Springfield, IL 62704.",
        "The White House is at 1600 Pennsylvania Ave. in Washington, D.C. 20500.",
        "Call first.",
    ), "street abbreviations and D.C. before a ZIP code"),
]


def gold_spans(case: SplitterCase) -> list[Span]:
    """The gold sentences of ``case`` as spans into ``case.text``, found in order."""
    spans: list[Span] = []
    pos = 0
    for sentence in case.sentences:
        start = case.text.find(sentence, pos)
        if start < 0:
            raise ValueError(f"case {case.id!r}: gold sentence {sentence!r} not found in order")
        spans.append(Span(start, start + len(sentence)))
        pos = start + len(sentence)
    return spans


# --- the languages of Chatterbox Multilingual ---------------------------------------
#: The languages Chatterbox Multilingual speaks (ISO 639-1 codes).
LANGUAGES = (
    "ar", "da", "de", "el", "en", "es", "fi", "fr", "he", "hi", "it", "ja", "ko", "ms",
    "nl", "no", "pl", "pt", "ru", "sv", "sw", "tr", "zh",
)


def _unspaced(id: str, sentences: tuple[str, ...], note: str) -> SplitterCase:
    """A case whose sentences follow each other without a space (Chinese, Japanese)."""
    return _case(id, sentences, note, text="".join(sentences))


#: Per-language hard cases, each id starting with its language code (``de-ordinal``).
#: English is covered by the cases above.
MULTILINGUAL_CASES: list[SplitterCase] = [
    # Arabic: ؟ ends a question, ، is a comma, Arabic has no letter case
    _case("ar-question", (
        "\u0647\u0644 \u0642\u0631\u0623\u062a \u0627\u0644\u0643\u062a\u0627\u0628 \u0627\u0644\u062c\u062f\u064a\u062f\u061f",
        "\u0646\u0639\u0645\u060c \u0642\u0631\u0623\u062a\u0647 \u0623\u0645\u0633 \u0648\u0623\u0639\u062c\u0628\u0646\u064a \u0643\u062b\u064a\u0631\u064b\u0627.",
    ), "the Arabic question mark ends a sentence; the Arabic comma does not"),
    _case("ar-decimal", (
        "\u0648\u0635\u0644 \u0627\u0644\u0642\u0637\u0627\u0631 \u0641\u064a \u0627\u0644\u0633\u0627\u0639\u0629 3.45 \u0645\u0633\u0627\u0621\u064b.",
        "\u0643\u0627\u0646 \u0627\u0644\u0631\u0643\u0627\u0628 \u0645\u062a\u0639\u0628\u064a\u0646 \u062c\u062f\u064b\u0627!",
        "\u0647\u0644 \u062a\u0623\u062e\u0631 \u0643\u062b\u064a\u0631\u064b\u0627\u061f",
    ), "a decimal inside Arabic text is not an end; a period before a caseless word is"),
    # Danish: »...« quotes, ordinals before lowercase months, kl. before the hour
    _case("da-quotes", (
        "Hun spurgte: \u00bbKommer du i morgen?\u00ab",
        "Jeg svarede ja.",
    ), "Danish closes a quote with \u00ab: it stays with the question it closes"),
    _case("da-ordinal", (
        "M\u00f8det er den 3. marts kl. 10.",
        "Vi ses der.",
    ), "an ordinal before a lowercase month and kl. before the hour are not ends"),
    # German: „...“ quotes, capitalised nouns after ordinals and abbreviations
    _case("de-quotes", (
        "\u201eKommst du heute Abend?\u201c, fragte sie.",
        "\u201eJa, gern.\u201c",
        "Dann legte er auf.",
    ), "German closes a quote with \u201c; a comma after it continues the sentence"),
    _case("de-ordinal", (
        "Am 3. Oktober feiern wir den Tag der Deutschen Einheit.",
        "Er kommt am 20. Mai bzw. Anfang Juni zur\u00fcck.",
        "Das ist z. B. ein Feiertag.",
    ), "German capitalises months and nouns: '3. Oktober' and 'bzw. Anfang' are not ends"),
    # Greek: ; is the question mark, · (ano teleia) a semicolon
    _case("el-question", (
        "\u03a4\u03b9 \u03ce\u03c1\u03b1 \u03c6\u03b5\u03cd\u03b3\u03b5\u03b9 \u03c4\u03bf \u03c4\u03c1\u03ad\u03bd\u03bf;",
        "\u03a3\u03c4\u03b9\u03c2 \u03bf\u03ba\u03c4\u03ce \u03c4\u03bf \u03c0\u03c1\u03c9\u03af.",
    ), "in Greek text the ASCII ';' is a question mark"),
    _case("el-ano-teleia", (
        "\u0389\u03c1\u03b8\u03b5 \u03b1\u03c1\u03b3\u03ac\u0387 \u03ae\u03c4\u03b1\u03bd \u03ba\u03bf\u03c5\u03c1\u03b1\u03c3\u03bc\u03ad\u03bd\u03bf\u03c2.",
        "\u03a0\u03bf\u03cd \u03c0\u03ae\u03b3\u03b5 \u03bc\u03b5\u03c4\u03ac\u037e",
        "\u039a\u03b1\u03bd\u03b5\u03af\u03c2 \u03b4\u03b5\u03bd \u03be\u03ad\u03c1\u03b5\u03b9.",
    ), "the ano teleia (U+0387) is a clause mark; U+037E is the Greek question mark"),
    # Spanish: ¿ ¡ open questions and exclamations, also mid-sentence
    _case("es-inverted-mid", (
        "Y t\u00fa, \u00bfqu\u00e9 opinas del plan?",
        "\u00a1Me parece genial!",
        "Empezamos el lunes.",
    ), "a question opened by \u00bf inside a sentence; \u00a1 opens the next one"),
    _case("es-titles", (
        "La Sra. G\u00f3mez lleg\u00f3 con el Dr. Ruiz a las 9.",
        "\u00bfVienes con nosotros?",
    ), "Sra. and Dr. before a name are not ends; a number ends the sentence before \u00bf"),
    # Finnish: ”...” quotes on both sides, ordinals before lowercase months
    _case("fi-quotes", (
        "H\u00e4n sanoi: \u201dOdota hetki.\u201d",
        "\u201dMiksi?\u201d kysyin.",
    ), "Finnish opens and closes quotes with \u201d; a lowercase word after the quote continues"),
    _case("fi-ordinal", (
        "Suomi itsen\u00e4istyi 6. joulukuuta 1917.",
        "Se on t\u00e4rke\u00e4 p\u00e4iv\u00e4.",
    ), "an ordinal before a lowercase month is not an end"),
    # French: a space before ? ! and inside « »
    _case("fr-spaced-punctuation", (
        "Tu viens ce soir ?",
        "Oui, j\u2019arrive \u00e0 20 h !",
        "\u00c0 tout \u00e0 l\u2019heure.",
    ), "French puts a space before ? and !"),
    _case("fr-guillemets", (
        "\u00ab Tu pars d\u00e9j\u00e0 ? \u00bb demanda-t-elle.",
        "\u00ab Oui, il est tard.\u00a0\u00bb",
        "Elle sourit.",
    ), "a spaced closing \u00bb stays with its sentence; a lowercase word after it continues"),
    # Hebrew: ASCII punctuation, no letter case
    _case("he-question", (
        "\u05de\u05d4 \u05d4\u05e9\u05e2\u05d4 \u05e2\u05db\u05e9\u05d9\u05d5?",
        "\u05d4\u05e9\u05e2\u05d4 \u05e9\u05dc\u05d5\u05e9 \u05d5\u05d7\u05e6\u05d9.",
        "\u05ea\u05d5\u05d3\u05d4 \u05e8\u05d1\u05d4!",
    ), "sentence ends before caseless Hebrew words"),
    _case("he-decimal", (
        "\u05d4\u05de\u05d7\u05d9\u05e8 \u05e2\u05dc\u05d4 \u05d1-2.5 \u05d0\u05d7\u05d5\u05d6\u05d9\u05dd \u05d1\u05e9\u05e0\u05d4 \u05e9\u05e2\u05d1\u05e8\u05d4.",
        "\u05d6\u05d4 \u05d4\u05e8\u05d1\u05d4 \u05db\u05e1\u05e3.",
    ), "a decimal glued to a Hebrew prefix is not an end"),
    # Hindi: danda and double danda, with or without a space before or after
    _case("hi-danda", (
        "\u092e\u0948\u0902 \u0915\u0932 \u0926\u093f\u0932\u094d\u0932\u0940 \u091c\u093e\u090a\u0901\u0917\u093e\u0964",
        "\u0915\u094d\u092f\u093e \u0924\u0941\u092e \u092e\u0947\u0930\u0947 \u0938\u093e\u0925 \u091a\u0932\u094b\u0917\u0947?",
        "\u0939\u093e\u0901, \u091c\u093c\u0930\u0942\u0930\u0964",
    ), "the danda ends a sentence like a full stop"),
    _case("hi-spaced-danda", (
        "\u092f\u0939 \u0915\u093f\u0924\u093e\u092c 1.5 \u0918\u0902\u091f\u0947 \u092e\u0947\u0902 \u092a\u0922\u093c\u0940 \u091c\u093e \u0938\u0915\u0924\u0940 \u0939\u0948 \u0964",
        "\u0907\u0938\u0947 \u091c\u093c\u0930\u0942\u0930 \u092a\u0922\u093c\u094b \u0965",
        "\u0927\u0928\u094d\u092f\u0935\u093e\u0926\u0964",
    ), "a danda after a space, a double danda, and a danda with no space after it",
       text="\u092f\u0939 \u0915\u093f\u0924\u093e\u092c 1.5 \u0918\u0902\u091f\u0947 \u092e\u0947\u0902 \u092a\u0922\u093c\u0940 \u091c\u093e \u0938\u0915\u0924\u0940 \u0939\u0948 \u0964 "
            "\u0907\u0938\u0947 \u091c\u093c\u0930\u0942\u0930 \u092a\u0922\u093c\u094b \u0965\u0927\u0928\u094d\u092f\u0935\u093e\u0926\u0964"),
    # Italian: titles, abbreviations glued to a suffix, times with a dot
    _case("it-titles", (
        "Il Sig. Rossi \u00e8 arrivato alle 10.30 con la Dott.ssa Bianchi.",
        "Erano in ritardo.",
    ), "Sig. before a name, 10.30 and Dott.ssa are not ends"),
    _case("it-apostrophes", (
        "Com\u2019\u00e8 andato l\u2019esame?",
        "Benissimo, grazie!",
        "E tu, cos\u2019hai fatto?",
    ), "elided words with apostrophes around the ends"),
    # Japanese: no spaces, 「」 quotes continued by the particle と
    _unspaced("ja-no-spaces", (
        "\u4eca\u65e5\u306f\u96e8\u304c\u964d\u3063\u3066\u3044\u307e\u3059\u3002",
        "\u5098\u3092\u6301\u3063\u3066\u3044\u307e\u3059\u304b\uff1f",
        "\u306f\u3044\u3001\u6301\u3063\u3066\u3044\u307e\u3059\uff01",
    ), "\u3002 \uff1f \uff01 end sentences with no space after them"),
    _unspaced("ja-quote-to", (
        "\u5f7c\u306f\u300c\u3059\u3050\u884c\u304d\u307e\u3059\u3002\u300d\u3068\u8a00\u3063\u305f\u3002",
        "\u3067\u3082\u3001\u6765\u306a\u304b\u3063\u305f\u3002",
    ), "a quoted sentence followed by the particle \u3068 is part of the sentence around it"),
    _unspaced("ja-quote-narration", (
        "\u300c\u884c\u3053\u3046\u3002\u300d",
        "\u5f7c\u306f\u7acb\u3061\u4e0a\u304c\u3063\u305f\u3002",
        "\u300c\u5206\u304b\u3063\u305f\u3002\u300d",
        "\u5f7c\u5973\u306f\u8a00\u3063\u305f\u3002",
        "\u300c\u672c\u5f53\uff1f\u300d",
        "\u300c\u672c\u5f53\u3002\u300d\u3063\u3066\u7b54\u3048\u305f\u3002",
    ), "Japanese joins a quoted sentence to the text after it only through a particle "
       "(\u3068, \u3063\u3066, \u306e, \u3092): narration glued after \u300c\u2026\u3002\u300d, even "
       "\u5f7c\u5973\u306f\u8a00\u3063\u305f, is a new sentence, and so is a new quote"),
    _unspaced("ja-quote-particles", (
        "\u5f7c\u5973\u306f\u300c\u672c\u5f53!?\u300d\u3068\u805e\u3044\u305f\u3002",
        "\u300c\u306f\u3044\u3002\u300d\u3001\u300c\u3044\u3044\u3048\u3002\u300d\u306e"
        "\u3069\u3061\u3089\u304b\u3067\u7b54\u3048\u3066\u304f\u3060\u3055\u3044\u3002",
        "\u300e\u96ea\u56fd\u3002\u300f\u3092\u8aad\u3093\u3060\u3002",
    ), "a quote followed by \u3068 (also after an ASCII !?), a comma, \u306e or \u3092 is part "
       "of the sentence around it"),
    # Korean: spaces between words, ASCII punctuation, no letter case
    _case("ko-spaces", (
        "\uc624\ub298 \ub0a0\uc528\uac00 \uc815\ub9d0 \uc88b\ub124\uc694.",
        "\uac19\uc774 \uc0b0\ucc45\ud560\uae4c\uc694?",
        "\ub124, \uc88b\uc544\uc694!",
    ), "ends before caseless Hangul words"),
    _case("ko-version", (
        "\ubc84\uc804 2.1\uc774 \uc5b4\uc81c \ucd9c\uc2dc\ub418\uc5c8\uc2b5\ub2c8\ub2e4.",
        "\uc0c8 \uae30\ub2a5\uc774 \ub9ce\uc544\uc694!",
    ), "a version number glued to a particle is not an end"),
    # Malay
    _case("ms-basic", (
        "Saya pergi ke pasar pagi tadi.",
        "Awak mahu ikut?",
        "Jom!",
    ), "plain Latin-script sentences"),
    _case("ms-titles", (
        "Pn. Aminah dan Dr. Siti tiba pada pukul 8.30 pagi.",
        "Mereka terus bermesyuarat.",
    ), "the titles Pn. and Dr. before a name and the time 8.30 are not ends"),
    # Dutch
    _case("nl-titles", (
        "Dhr. Jansen en mevr. De Vries kwamen om 9 uur.",
        "Ze bleven tot de avond.",
    ), "dhr. and mevr. before a name are not ends"),
    _case("nl-apostrophe-s", (
        "\u2019s Morgens drinkt hij koffie.",
        "\u2019s Avonds drinkt hij thee.",
    ), "a sentence may open with \u2019s (des): the period before it ends a sentence"),
    # Norwegian
    _case("no-ordinal", (
        "Vi m\u00f8tes 17. mai i Oslo.",
        "Det blir fest!",
    ), "an ordinal before a lowercase month is not an end"),
    _case("no-clock", (
        "Han kom kl. 8 og dro ca. 10.",
        "Hvorfor s\u00e5 tidlig?",
    ), "kl. and ca. before a number are not ends; the number at the end is"),
    # Polish
    _case("pl-street", (
        "Mieszkam przy ul. D\u0142ugiej 5 w Krakowie.",
        "Zapraszam!",
    ), "ul. (street) before a capitalised name is not an end"),
    _case("pl-np", (
        "Odwiedzi\u0142em wiele miast, np. Gda\u0144sk i Pozna\u0144.",
        "By\u0142o wspaniale.",
    ), "np. (for example) before a capitalised name is not an end"),
    # Portuguese
    _case("pt-titles", (
        "A Sra. Costa e o Dr. Lima chegaram \u00e0s 14h.",
        "Voc\u00ea tamb\u00e9m vem?",
    ), "Sra. and Dr. before a name are not ends"),
    _case("pt-exclaim", (
        "Que dia lindo!",
        "Vamos \u00e0 praia?",
        "Claro, vamos j\u00e1.",
    ), "exclamation and question marks before capitalised words"),
    # Russian: initials, «» quotes and dialogue dashes
    _case("ru-initials", (
        "\u0420\u043e\u043c\u0430\u043d \u043d\u0430\u043f\u0438\u0441\u0430\u043b \u041b. \u041d. \u0422\u043e\u043b\u0441\u0442\u043e\u0439.",
        "\u041e\u043d \u0440\u0430\u0431\u043e\u0442\u0430\u043b \u043d\u0430\u0434 \u043d\u0438\u043c \u0448\u0435\u0441\u0442\u044c \u043b\u0435\u0442.",
    ), "Cyrillic initials before a surname are not ends"),
    _case("ru-dialogue", (
        "\u00ab\u0422\u044b \u043f\u0440\u0438\u0434\u0451\u0448\u044c?\u00bb \u2014 \u0441\u043f\u0440\u043e\u0441\u0438\u043b\u0430 \u043e\u043d\u0430.",
        "\u00ab\u0414\u0430\u00bb, \u2014 \u043e\u0442\u0432\u0435\u0442\u0438\u043b \u043e\u043d.",
    ), "a dash and a lowercase word after a quoted question continue the sentence"),
    # Swedish
    _case("sv-quotes", (
        "\u201dKommer du?\u201d fr\u00e5gade hon.",
        "\u201dJa, strax!\u201d",
        "Sedan gick vi.",
    ), "Swedish opens and closes quotes with \u201d"),
    _case("sv-abbreviations", (
        "Vi ses kl. 15 p\u00e5 torsdag, t.ex. vid stationen.",
        "Ta med paraply.",
    ), "kl. before the hour and t.ex. are not ends"),
    # Swahili
    _case("sw-basic", (
        "Habari za asubuhi?",
        "Nzuri sana, asante.",
        "Karibu tena!",
    ), "plain Latin-script sentences"),
    _case("sw-numbers", (
        "Bei ya mkate ni shilingi 1.500 leo.",
        "Jana ilikuwa nafuu zaidi.",
    ), "a thousands separator is not an end"),
    # Turkish: dotted and dotless capitals, ordinals
    _case("tr-dotted-i", (
        "\u0130stanbul\u2019a yar\u0131n gidiyorum.",
        "Sen de gelir misin?",
        "I\u015f\u0131klar \u00e7ok g\u00fczel!",
    ), "sentences opening with \u0130 and I"),
    _case("tr-ordinal", (
        "Toplant\u0131 3. katta yap\u0131lacak.",
        "Saat 14.00\u2019te ba\u015fl\u0131yor.",
    ), "an ordinal before a lowercase word is not an end; 14.00\u2019te is one word"),
    # Chinese: no spaces, full-width marks, full-width digits
    _unspaced("zh-no-spaces", (
        "\u6211\u4eec\u660e\u5929\u53bb\u5317\u4eac\u3002",
        "\u4f60\u8981\u4e00\u8d77\u6765\u5417\uff1f",
        "\u592a\u597d\u4e86\uff01",
    ), "\u3002 \uff1f \uff01 end sentences with no space after them"),
    _unspaced("zh-quotes-fullwidth-stop", (
        "\u4ed6\u95ee\uff1a\u201c\u4f60\u5403\u996d\u4e86\u5417\uff1f\u201d",
        "\u5706\u5468\u7387\u7ea6\u7b49\u4e8e\uff13\uff0e\uff11\uff14\u3002",
        "\u8fd9\u4e2a\u6570\u5b57\u5f88\u6709\u540d\uff0e",
        "\u4f60\u77e5\u9053\u5417\uff1f",
    ), "a closing quote after \uff1f stays with it; the full-width \uff0e ends a sentence "
       "except between digits"),
    _unspaced("zh-quote-speech-tag", (
        "\u201c\u597d\u3002\u201d\u4ed6\u8bf4\u3002",
        "\u201c\u4f60\u5462\uff1f\u201d\u5979\u95ee\u9053\uff0c\u201c\u660e\u5929\u6765\u5417\uff1f\u201d",
        "\u6211\u70b9\u4e86\u70b9\u5934\u3002",
        "\u201c\u597d\u5417\uff1f\u201d\u6211\u95ee\u4ed6\u3002",
        "\u300c\u597d\u3002\u300d\u4ed6\u8aaa\u3002",
        "\u300c\u8d70\u5427\u3002\u300d",
        "\u4ed6\u8aaa\u5b8c\u5c31\u8d70\u4e86\u3002",
    ), "a quoted sentence followed directly by a speech tag (\u4ed6\u8bf4, \u5979\u95ee\u9053, "
       "\u6211\u95ee\u4ed6, traditional \u4ed6\u8aaa in \u300c\u300d) is one sentence with it; "
       "narration after the quote (\u6211\u70b9\u4e86\u70b9\u5934, \u4ed6\u8aaa\u5b8c\u5c31"
       "\u8d70\u4e86: he finished speaking and left) starts a new one"),
    _unspaced("zh-quote-ends", (
        "\u4ed6\u95ee\uff1a\u201c\u4f60\u6765\u5417\uff1f\u201d",
        "\u6211\u8bf4\uff1a\u201c\u6765\u3002\u201d",
        "\u201c\u771f\u7684\uff1f\u201d",
        "\u201c\u771f\u7684\u3002\u201d\u4ed6\u7b11\u7740\u8bf4\u3002",
        "\u201c\u8d70\u5427\u3002\u201d",
        "\u4ed6\u7ad9\u8d77\u6765\uff0c\u8d70\u4e86\u51fa\u53bb\u3002",
    ), "a quote introduced by a colon ends the sentence the colon opened, even before "
       "\u6211\u8bf4; a new quote starts a new sentence; narration without a verb of saying "
       "(\u4ed6\u7ad9\u8d77\u6765) after a quote that opened the sentence is a new one"),
    _unspaced("zh-quote-inside-sentence", (
        "\u6211\u542c\u89c1\u6709\u4eba\u558a\u201c\u6551\u547d\uff01\u201d\u4fbf\u8dd1\u4e86\u8fc7\u53bb\u3002",
        "\u4ed6\u53ea\u56de\u4e86\u4e00\u53e5\u201c\u77e5\u9053\u4e86\u3002\u201d\uff0c\u5c31\u6302\u4e86\u7535\u8bdd\u3002",
        "\u201c\u597d\u3002\u201d",
    ), "a quote inside a sentence (a character right before its opening quote) or "
       "followed by a comma goes on with the sentence; a quote at the end of the text ends"),
    _case("zh-quote-line-break", (
        "\u201c\u597d\u3002\u201d",
        "\u5979\u95ee\u9053\u3002",
        "\u201c\u8d70\u5427\u3002\u201d",
        "\u4ed6\u8bf4\u3002",
    ), "a line break or a space after a closed quote ends the sentence even before a "
       "speech tag: the writer set the quote apart",
        text="\u201c\u597d\u3002\u201d\n\u5979\u95ee\u9053\u3002"
             "\u201c\u8d70\u5427\u3002\u201d \u4ed6\u8bf4\u3002"),
]

HARD_CASES.extend(MULTILINGUAL_CASES)
