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
