"""Small local copies of the real datasets, in their exact hub schemas (the columns and types each hub dataset has).

:func:`write_hub_copies` writes, for every dataset a real task reads, the hub's own layout
(``<root>/<dataset id>/<config>/<split>-00000-of-00001.parquet``) with the real features: column
names, ClassLabel names in the hub's order, plain-int and string labels where the hub has them, and
nested answers. The loaders then read them exactly as they read a downloaded snapshot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, Features, List, Value

S, I32 = Value("string"), Value("int32")
NLI = ClassLabel(names=["entailment", "neutral", "contradiction"])
PANX = ClassLabel(names=["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"])
UPOS = ClassLabel(names=["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
                         "PUNCT", "SCONJ", "SYM", "VERB", "X"])
SQUAD = Features({"id": S, "title": S, "context": S, "question": S,
                  "answers": {"text": List(S), "answer_start": List(I32)}})
XTREME_QA = Features({"id": S, "title": S, "context": S, "question": S,  # answers keys in xtreme's order
                      "answers": {"answer_start": List(I32), "text": List(S)}})
BITEXT = Features({"source_sentence": S, "target_sentence": S, "source_lang": S, "target_lang": S})

CONTEXT = ("The committee met in Geneva in 1998 . Its chair , Maria Lopez , proposed a new budget . "
           "The budget was approved after a long debate about schools and roads .")


def _qa(i: int, title: bool = True) -> dict[str, Any]:
    # ids as SQuAD's are: 24 hex digits (TyDiQA's filter by language prefix must not drop them)
    row = {"id": f"5733be284776f419006611{i:02x}", "context": CONTEXT, "question": "Who proposed a new budget ?",
           "answers": {"text": ["Maria Lopez"], "answer_start": [CONTEXT.index("Maria Lopez")]}}
    return {**row, "title": "Committee"} if title else row


def _nli(n: int) -> dict[str, list[Any]]:
    return {"premise": [f"A man plays guitar number {i} ." for i in range(n)],
            "hypothesis": [f"Someone makes music {i} ." for i in range(n)], "label": [i % 3 for i in range(n)]}


# (dataset id, config or None) -> (features, {split: columns})
def hub_tables() -> dict[tuple[str, str | None], tuple[Features, dict[str, dict[str, list[Any]]]]]:
    tables: dict[tuple[str, str | None], tuple[Features, dict[str, dict[str, list[Any]]]]] = {}
    anli = Features({"uid": S, "premise": S, "hypothesis": S, "label": NLI, "reason": S})
    tables["facebook/anli", "plain_text"] = (anli, {
        f"{split}_r{r}": {"uid": [f"{split}{r}-{i}" for i in range(3)], **_nli(3), "reason": ["", "x", ""]}
        for split in ("train", "dev", "test") for r in (1, 2, 3)})
    tables["stanfordnlp/snli", "plain_text"] = (Features({"premise": S, "hypothesis": S, "label": NLI}),
                                                {"train": {**_nli(4), "label": [0, 1, -1, 2]}})  # -1: no gold label
    mnli = Features({"premise": S, "hypothesis": S, "label": NLI, "idx": I32})
    tables["nyu-mll/glue", "mnli"] = (mnli, {
        split: {**_nli(6), "idx": list(range(6))}
        for split in ("train", "validation_matched", "validation_mismatched")})
    tables["nyu-mll/glue", "qqp"] = (
        Features({"question1": S, "question2": S, "label": ClassLabel(names=["not_duplicate", "duplicate"]), "idx": I32}),
        {split: {"question1": ["How do I learn Python ?", "What is rain ?", "Why ?"],
                 "question2": ["How can I learn Python ?", "Who is Bob ?", "Why not ?"],
                 "label": [1, 0, -1] if split == "test" else [1, 0, 0], "idx": [0, 1, 2]}
         for split in ("train", "validation", "test")})
    for dataset, config in (("rajpurkar/squad", "plain_text"), ("rajpurkar/squad_v2", "squad_v2")):
        rows = [_qa(i) for i in range(4)]
        if config == "squad_v2":
            rows[3] = {**rows[3], "question": "Who vetoed the budget ?", "answers": {"text": [], "answer_start": []}}
        tables[dataset, config] = (SQUAD, {split: _columns(rows) for split in ("train", "validation")})
    hellaswag = Features({"ind": I32, "activity_label": S, "ctx_a": S, "ctx_b": S, "ctx": S, "endings": List(S),
                          "source_id": S, "split": S, "split_type": S, "label": S})
    tables["Rowan/hellaswag", None] = (hellaswag, {split: {
        "ind": [1, 2], "activity_label": ["Cooking", "Running"], "ctx_a": ["A man cracks an egg .", "She laces her shoes ."],
        "ctx_b": ["he", ""], "ctx": ["A man cracks an egg . he", "She laces her shoes ."],
        "endings": [["pours it in a pan .", "eats the shell .", "sings .", "flies away ."], ["runs .", "sleeps .",
                                                                                              "melts .", "sings ."]],
        "source_id": ["activitynet~v_1", "wikihow~2"], "split": [split, split], "split_type": ["indomain", "zeroshot"],
        "label": ["", ""] if split == "test" else ["0", "0"]} for split in ("train", "validation", "test")})
    csqa = Features({"id": S, "question": S, "question_concept": S, "choices": {"label": List(S), "text": List(S)},
                     "answerKey": S})
    tables["tau/commonsense_qa", None] = (csqa, {split: {
        "id": ["c1", "c2"], "question": ["Where do you keep milk ?", "What do birds do ?"],
        "question_concept": ["milk", "birds"],
        "choices": [{"label": ["A", "B", "C", "D", "E"], "text": ["fridge", "oven", "shoe", "roof", "car"]},
                    {"label": ["A", "B", "C", "D", "E"], "text": ["swim", "fly", "read", "drive", "cook"]}],
        "answerKey": ["", ""] if split == "test" else ["A", "B"]} for split in ("train", "validation", "test")})
    cosmos = Features({"id": S, "context": S, "question": S, "answer0": S, "answer1": S, "answer2": S, "answer3": S,
                       "label": I32})
    tables["allenai/cosmos_qa", None] = (cosmos, {split: {
        "id": ["k1", "k2"], "context": ["I missed the bus .", "It rained all day ."],
        "question": ["Why was I late ?", "Why was the grass wet ?"],
        "answer0": ["I missed the bus", "The sun"], "answer1": ["I was early", "It rained"],
        "answer2": ["None of the above", "Snow"], "answer3": ["A dog", "A car"],
        "label": [-1, -1] if split == "test" else [0, 1]} for split in ("train", "validation", "test")})
    for lang in ("en", "de", "sw"):
        tables["facebook/xnli", lang] = (Features({"premise": S, "hypothesis": S, "label": NLI}),
                                         {split: _nli(6) for split in ("train", "validation", "test")})
    for lang in ("en", "de", "ja"):
        tables["google-research-datasets/paws-x", lang] = (
            Features({"id": I32, "sentence1": S, "sentence2": S, "label": ClassLabel(names=["0", "1"])}),
            {split: {"id": [1, 2], "sentence1": ["a b c", "x y"], "sentence2": ["c b a", "x y"], "label": [0, 1]}
             for split in ("train", "validation", "test")})
    for lang in ("en", "de"):
        tables["google/xtreme", f"PAN-X.{lang}"] = (
            Features({"tokens": List(S), "ner_tags": List(PANX), "langs": List(S)}),
            {split: {"tokens": [["Maria", "Lopez", "visited", "Geneva", "."], ["Nothing", "here", "."]],
                     "ner_tags": [[1, 2, 0, 5, 0], [0, 0, 0]], "langs": [[lang] * 5, [lang] * 3]}
             for split in ("train", "validation", "test")})
    for name, splits in (("English", ("train", "validation", "test")), ("Kazakh", ("train", "test")),
                         ("Thai", ("test",))):
        tables["google/xtreme", f"udpos.{name}"] = (
            Features({"tokens": List(S), "pos_tags": List(UPOS)}),
            {split: {"tokens": [["The", "dog", "barks", "."]], "pos_tags": [[5, 7, 15, 12]]} for split in splits})
    for lang in ("en", "de"):
        tables["google/xtreme", f"XQuAD.{lang}"] = (
            Features({k: v for k, v in XTREME_QA.items() if k != "title"}),
            {"validation": _columns([_qa(i, title=False) for i in range(3)])})
        tables["google/xtreme", f"MLQA.{lang}.{lang}"] = (XTREME_QA, {
            split: _columns([_qa(i) for i in range(3)]) for split in ("validation", "test")})
    tydi = [{**_qa(i), "id": f"{lang}-{i}"} for i, lang in enumerate(("english", "arabic", "english", "swahili"))]
    tables["google/xtreme", "tydiqa"] = (XTREME_QA, {"train": _columns(tydi), "validation": _columns(tydi)})
    for lang in ("de", "fr"):
        tables["google/xtreme", f"bucc18.{lang}"] = (BITEXT, {split: {
            "source_sentence": ["Der Hund bellt .\n", "Es regnet .\n", "Ich esse Brot .\n"],
            "target_sentence": ["The dog barks .\n", "It rains .\n", "I eat bread .\n"],
            "source_lang": [f"{lang}-000012", f"{lang}-000044", f"{lang}-000051"],  # sentence ids, not languages
            "target_lang": ["en-000036", "en-000007", "en-000102"]} for split in ("validation", "test")})
    for code in ("deu", "swh"):
        tables["google/xtreme", f"tatoeba.{code}"] = (BITEXT, {"validation": {
            "source_sentence": ["Der Hund bellt .\n", "Es regnet .\n"], "target_sentence": ["The dog barks .\n",
                                                                                             "It rains .\n"],
            "source_lang": [code, code], "target_lang": ["eng", "eng"]}})
    xcopa = Features({"premise": S, "choice1": S, "choice2": S, "question": S, "label": I32, "idx": I32,
                      "changed": Value("bool")})
    for lang in ("et", "sw"):
        tables["cambridgeltl/xcopa", lang] = (xcopa, {split: {
            "premise": ["Mees kukkus .", "Vihma sadas ."], "choice1": ["Ta libises .", "Päike paistis ."],
            "choice2": ["Ta naeris .", "Maa sai märjaks ."], "question": ["cause", "effect"], "label": [0, 1],
            "idx": [0, 1], "changed": [False, True]} for split in ("validation", "test")})
    tables["aps/super_glue", "copa"] = (
        Features({"premise": S, "choice1": S, "choice2": S, "question": S, "idx": I32,
                  "label": ClassLabel(names=["choice1", "choice2"])}),
        {"train": {"premise": ["The man fell .", "It rained ."], "choice1": ["He slipped .", "The sun shone ."],
                   "choice2": ["He laughed .", "The ground got wet ."], "question": ["cause", "effect"],
                   "idx": [0, 1], "label": [0, 1]}})
    # XTREME-R's new languages (tasks/xtreme_r.py): PAN-X from WikiANN, XQuAD's Romanian from google/xquad
    tables["unimelb-nlp/wikiann", "az"] = (
        Features({"tokens": List(S), "ner_tags": List(PANX), "langs": List(S), "spans": List(S)}),
        {split: {"tokens": [["Əliyev", "Bakıya", "gəldi", "."]], "ner_tags": [[1, 5, 0, 0]], "langs": [["az"] * 4],
                 "spans": [["PER: Əliyev", "LOC: Bakıya"]]} for split in ("train", "validation", "test")})
    tables["google/xquad", "xquad.ro"] = (
        Features({"id": S, "context": S, "question": S, "answers": {"text": List(S), "answer_start": List(I32)}}),
        {"validation": {"id": ["r0"], "context": ["Comitetul s-a întâlnit la Geneva în 1998 ."],
                        "question": ["Unde s-a întâlnit comitetul ?"],
                        "answers": [{"text": ["Geneva"], "answer_start": [26]}]}})
    xquad_r = Features({"id": S, "context": S, "question": S, "answers": {"text": List(S), "answer_start": List(I32)}})
    for lang, context, questions in (
            ("en", "The dog barks. It rains today. Bread is baked.", ("What barks?", "What is baked?")),
            ("de", "Der Hund bellt. Es regnet heute. Brot wird gebacken.", ("Was bellt?", "Was wird gebacken?"))):
        answers = [context.split(". ")[0], context.split(". ")[2]]
        tables["google-research-datasets/xquad_r", lang] = (xquad_r, {"validation": {
            "id": ["q-dog", "q-bread"], "context": [context, context], "question": list(questions),
            "answers": [{"text": [a], "answer_start": [context.index(a)]} for a in answers]}})
    return tables


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {key: [row[key] for row in rows] for key in rows[0]}


def write_hub_copies(root: Path) -> dict[str, str]:
    """Write every table under ``root``; returns the config's ``data`` mapping (dataset id -> dir)."""
    data: dict[str, str] = {}
    for (dataset, config), (features, splits) in hub_tables().items():
        base = root / dataset / (config or "data")
        base.mkdir(parents=True, exist_ok=True)
        for split, columns in splits.items():
            Dataset.from_dict(columns, features=features).to_parquet(str(base / f"{split}-00000-of-00001.parquet"))
        data[dataset] = str(root / dataset)
    return data


CCG_TAGS = {"NP": 0, "(S\\NP)/NP": 1, "S\\NP": 2, ".": 3, "NP/N": 4, "N": 5}


def write_ccg(root: Path) -> str:
    """jiant's CCG files: tokens TAB one supertag per token, and tags_to_id.json."""
    import json

    root.mkdir(parents=True, exist_ok=True)
    lines = ["Mary likes the dog .\tNP (S\\NP)/NP NP/N N .", "John sleeps .\tNP S\\NP ."]
    for split in ("train", "dev", "test"):
        (root / f"ccg.{split}").write_text("\n".join(lines) + "\n")
    (root / "tags_to_id.json").write_text(json.dumps(CCG_TAGS))
    return str(root)


def write_mewslix(root: Path) -> str:
    """Mewsli-X's files as get-mewsli-x.sh leaves them (google-research mewsli_x/schema.py key names)."""
    import json

    root.mkdir(parents=True, exist_ok=True)
    entities = [{"entity_id": "Q90", "title": "Paris", "description": "Paris is the capital of France.",
                 "description_language": "en", "description_url": "https://en.wikipedia.org/wiki/Paris",
                 "sentence_spans": [{"start": 0, "end": 31}]},
                {"entity_id": "Q64", "title": "Berlin", "description": "Berlin is the capital of Germany.",
                 "description_language": "en", "description_url": "https://en.wikipedia.org/wiki/Berlin",
                 "sentence_spans": [{"start": 0, "end": 33}]}]
    (root / "candidate_set_entities.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entities))
    text = "Gestern regnete es. Der Gipfel fand in Berlin statt."

    def article(language: str, document_id: str) -> dict[str, Any]:
        start = text.index("Berlin")
        return {"context": {"document_title": "Gipfel", "document_url": "https://de.wikinews.org/wiki/Gipfel",
                            "document_id": document_id, "language": language, "text": text,
                            "sentence_spans": [{"start": 0, "end": 19}, {"start": 20, "end": len(text)}]},
                "mentions": [{"example_id": f"{document_id}-0", "entity_id": "Q64",
                              "mention_span": {"start": start, "end": start + 6, "text": "Berlin"},
                              "metadata": {"curid": "1", "revid": "2", "text_md5": "x", "mention_url": "u",
                                           "bin_name": "b"}}]}

    for split in ("dev", "test"):
        (root / f"wikinews_mentions-{split}.jsonl").write_text(
            json.dumps(article("de", "d1")) + "\n" + json.dumps(article("ja", "d2")) + "\n")
    # the dual encoder's English Wikipedia pairs (schema.py's MentionEntityPair), one per entity
    pairs = []
    for i, (entity, name, text) in enumerate(((entities[1], "Berlin", "Yesterday it rained. The summit took place in Berlin."),
                                              (entities[0], "Paris", "Tourists love Paris. It is in France."))):
        start = text.index(name)
        pairs.append({"contextual_mention": {
            "context": {"document_title": name, "document_url": f"https://en.wikipedia.org/wiki/{name}",
                        "document_id": f"w{i}", "language": "en", "text": text,
                        "sentence_spans": [{"start": 0, "end": text.index(".") + 1},
                                           {"start": text.index(".") + 2, "end": len(text)}]},
            "mention": {"example_id": f"w{i}-0", "entity_id": entity["entity_id"],
                        "mention_span": {"start": start, "end": start + len(name), "text": name}}},
            "entity": entity})
    (root / "wikipedia_pairs-train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return str(root)


def write_laser_tatoeba(root: Path) -> str:
    """LASER's data/tatoeba/v1 files for XTREME-R's new Tatoeba languages: line-aligned pairs."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "tatoeba.pol-eng.pol").write_text("Pies szczeka.\nPada deszcz.\n", encoding="utf-8")
    (root / "tatoeba.pol-eng.eng").write_text("The dog barks.\nIt rains.\n", encoding="utf-8")
    return str(root)


# A UD v2.7 treebank in CoNLL-U (ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC): comments, a
# multiword token (its range line skipped, its two syntactic words kept), an empty node (8.1,
# skipped), a form with a space, and a sentence shipped without its text (all forms "_": dropped).
CONLLU = """# sent_id = 1
# text = Nie wiem, żeś był.
1\tNie\tnie\tPART\tqub\t_\t2\tadvmod\t_\t_
2\twiem\twiedzieć\tVERB\tfin\t_\t0\troot\t_\tSpaceAfter=No
3\t,\t,\tPUNCT\tinterp\t_\t5\tpunct\t_\t_
4-5\tżeś\t_\t_\t_\t_\t_\t_\t_\t_
4\tże\tże\tSCONJ\tcomp\t_\t6\tmark\t_\t_
5\tś\tbyć\tAUX\taglt\t_\t6\taux\t_\t_
6\tbył\tbyć\tVERB\tpraet\t_\t2\tccomp\t_\tSpaceAfter=No
7\t.\t.\tPUNCT\tinterp\t_\t2\tpunct\t_\t_

# sent_id = 2
1\t10 000\t10 000\tNUM\tnum\t_\t2\tnummod\t_\t_
2\tosób\tosoba\tNOUN\tsubst\t_\t0\troot\t_\t_
2.1\tjest\tbyć\tAUX\tfin\t_\t_\t_\t2:cop\t_

# sent_id = 3
1\t_\t_\tNOUN\t_\t_\t0\troot\t_\t_
2\t_\t_\tPUNCT\t_\t_\t1\tpunct\t_\t_
"""


def write_ud27(root: Path) -> str:
    """The extracted ud-treebanks-v2.7 layout: UD_<Language>-<TB>/<lang>_<tb>-ud-<split>.conllu;
    two Polish treebanks (concatenated per split, in file-name order), one with a test split only."""
    for folder, stem, splits in (("UD_Polish-LFG", "pl_lfg", ("train", "dev", "test")),
                                 ("UD_Polish-PUD", "pl_pud", ("test",))):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for split in splits:
            (root / folder / f"{stem}-ud-{split}.conllu").write_text(CONLLU, encoding="utf-8")
    return str(root)
