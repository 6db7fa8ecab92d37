"""The real tasks' loaders, encoders, heads and metrics, on fixture files in the hub's exact schemas
(tests/realdata.py), read through the same code path as a downloaded snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from realdata import CCG_TAGS, CONTEXT, write_ccg, write_hub_copies, write_laser_tatoeba, write_mewslix, write_ud27

from stiltsearch.trainables import heads, hub
from stiltsearch.trainables.tasks import PAPER_INTERMEDIATE, SUITES, TASKS, get_task
from stiltsearch.trainables.tasks.base import (
    BitextExample,
    ChoiceExample,
    DualExample,
    MentionExample,
    PairExample,
    PooledQAExample,
    SpanExample,
    TagExample,
)
from stiltsearch.trainables.tasks.udpos import UPOS

SQUAD_SENTENCE = "Its chair , Maria Lopez , proposed a new budget ."  # CONTEXT's sentence holding the answer
REAL = sorted(name for name, cls in TASKS.items() if cls.benchmark == "real")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("hub")
    return {**write_hub_copies(root), "ccg": write_ccg(root / "ccg"), "mewsli-x": write_mewslix(root / "mewsli-x"),
            "laser-tatoeba": write_laser_tatoeba(root / "laser"), "ud-2.7": write_ud27(root / "ud-2.7")}


# (task, split, language) -> the first example it must give
FIRST = {
    ("anli", "train", "en"): PairExample("A man plays guitar number 0 .", "Someone makes music 0 .", 0),
    ("mnli", "dev", "en"): PairExample("A man plays guitar number 0 .", "Someone makes music 0 .", 0),
    ("qqp", "dev", "en"): PairExample("How do I learn Python ?", "How can I learn Python ?", 1),
    ("squad", "train", "en"): SpanExample("Who proposed a new budget ?", CONTEXT, ("Maria Lopez",),
                                          CONTEXT.index("Maria Lopez")),
    ("hellaswag", "dev", "en"): ChoiceExample("A man cracks an egg .", ("he pours it in a pan .", "he eats the shell .",
                                                                        "he sings .", "he flies away ."), 0),
    ("commonsenseqa", "dev", "en"): ChoiceExample("Where do you keep milk ?", ("fridge", "oven", "shoe", "roof", "car"),
                                                  0),
    ("cosmosqa", "dev", "en"): ChoiceExample("I missed the bus . Why was I late ?", ("I missed the bus", "I was early",
                                                                                    "None of the above", "A dog"), 0),
    ("ccg", "train", "en"): TagExample(("Mary", "likes", "the", "dog", "."), (0, 1, 4, 5, 3)),
    ("xnli", "train", "sw"): PairExample("A man plays guitar number 0 .", "Someone makes music 0 .", 0),
    ("pawsx", "dev", "ja"): PairExample("a b c", "c b a", 0),
    ("panx", "dev", "de"): TagExample(("Maria", "Lopez", "visited", "Geneva", "."), (1, 2, 0, 5, 0)),
    ("udpos", "test", "th"): TagExample(("The", "dog", "barks", "."), (5, 7, 15, 12)),
    ("xquad", "dev", "de"): SpanExample("Who proposed a new budget ?", CONTEXT, ("Maria Lopez",),
                                        CONTEXT.index("Maria Lopez")),
    ("xquad", "train", "en"): SpanExample("Who proposed a new budget ?", CONTEXT, ("Maria Lopez",),
                                          CONTEXT.index("Maria Lopez")),  # SQuAD 1.1
    ("mlqa", "test", "de"): SpanExample("Who proposed a new budget ?", CONTEXT, ("Maria Lopez",),
                                        CONTEXT.index("Maria Lopez")),  # MLQA.de.de
    ("tatoeba", "dev", "de"): BitextExample("Der Hund bellt .", "The dog barks ."),  # trailing "\n" stripped
    ("bucc2018", "test", "fr"): BitextExample("Der Hund bellt .", "The dog barks .", "fr-000012", "en-000036"),
    ("xcopa", "dev", "et"): ChoiceExample("Mees kukkus .", ("because Ta libises .", "because Ta naeris ."), 0),
    ("lareqa", "dev", "de"): PooledQAExample("Was bellt?", "q-dog", ("Der Hund bellt.", "Es regnet heute.",
                                                                   "Brot wird gebacken."), 0,
                                             "Der Hund bellt. Es regnet heute. Brot wird gebacken."),
    # the dual encoder's training pairs: a SQuAD question against its answer sentence with the paragraph
    ("lareqa", "train", "en"): DualExample("Who proposed a new budget ?", SQUAD_SENTENCE + CONTEXT),
    ("mewslix", "dev", "de"): MentionExample("Der Gipfel fand in Berlin statt.", "Q64"),  # the mention's sentence
    ("mewslix", "train", "en"): DualExample("The summit took place in Berlin.",
                                            "Berlin. Berlin is the capital of Germany."),
    # XTREME-R's tasks: XTREME's languages as XTREME reads them, the new ones from their own sources
    ("panx_xr", "dev", "de"): TagExample(("Maria", "Lopez", "visited", "Geneva", "."), (1, 2, 0, 5, 0)),
    ("panx_xr", "test", "az"): TagExample(("Əliyev", "Bakıya", "gəldi", "."), (1, 5, 0, 0)),  # unimelb-nlp/wikiann
    ("xquad_xr", "dev", "ro"): SpanExample("Unde s-a întâlnit comitetul ?", "Comitetul s-a întâlnit la Geneva în 1998 .",
                                           ("Geneva",), 26),  # google/xquad
    ("tatoeba_xr", "dev", "pl"): BitextExample("Pies szczeka.", "The dog barks."),  # LASER's files
    ("tatoeba_xr", "dev", "de"): BitextExample("Der Hund bellt .", "The dog barks ."),
    # UD v2.7: the multiword token's two syntactic words (że, ś), not its fused form (żeś)
    ("udpos_xr", "train", "pl"): TagExample(("Nie", "wiem", ",", "że", "ś", "był", "."), (9, 15, 12, 13, 3, 15, 12)),
    ("xcopa", "train", "en"): ChoiceExample("The man fell .", ("because He slipped .", "because He laughed ."), 0),
}


@pytest.mark.parametrize("task,split,language", sorted(FIRST))
def test_a_loader_reads_its_datasets_real_schema(task: str, split: str, language: str, data: dict[str, str]) -> None:
    assert get_task(task, data).load(split, language)[0] == FIRST[task, split, language]


def test_unlabelled_rows_are_dropped_and_other_quirks(data: dict[str, str]) -> None:
    assert len(get_task("anli", data).load("train", "en")) == 9  # three rounds of three
    assert len(get_task("anli_mix", data).load("train", "en")) == 9 + 3 + 6  # SNLI's -1 row is dropped
    assert len(get_task("hellaswag", data).load("dev", "en")) == 2
    squad2 = get_task("squad_v2", data).load("dev", "en")
    assert squad2[3].answers == () and squad2[3].answer_start == -1  # unanswerable
    tydi = get_task("tydiqa", data)
    assert [ex.answers for ex in tydi.load("dev", "en")] == [("Maria Lopez",)] * 2  # the "english-" ids only
    assert len(tydi.load("dev", "sw")) == 1
    # trained on SQuAD 1.1, whose hex ids carry no language prefix: none is dropped (all 4 rows)
    assert [ex.answers for ex in tydi.load("train", "en")] == [("Maria Lopez",)] * 4
    udpos = get_task("udpos", data)
    assert "th" not in udpos.eval_languages("dev") and "kk" not in udpos.eval_languages("dev")
    assert "th" in udpos.eval_languages("test")
    with pytest.raises(ValueError, match="no dev data in language 'th'"):
        udpos.load("dev", "th")


# XTREME-R's evaluate.py (XTREME_R_TASK2LANGS): the languages each task is averaged over
XTREME_R_LANGUAGES = {
    "xnli": "ar bg de el en es fr hi ru sw th tr ur vi zh",
    "panx": "ar he vi id jv ms tl eu ml ta te af nl en de el bn hi mr ur fa fr it pt es bg ru ja ka ko th sw yo my "
            "zh kk tr et fi hu qu pl uk az lt pa gu ro",
    "udpos": "af ar bg de el en es et eu fa fi fr he hi hu id it ja kk ko mr nl pt ru ta te th tl tr ur vi yo zh "
             "lt pl uk wo ro",
    "tatoeba": "ar he vi id jv tl eu ml ta te af nl de el bn hi mr ur fa fr it pt es bg ru ja ka ko th sw zh kk tr "
               "et fi hu az lt pl uk ro",
    "xcopa": "et ht id it qu sw ta th tr vi zh",
    "mewslix": "ar de en es fa ja pl ro ta tr uk",
    "xquad": "en es de el ru tr ar vi th zh hi ro",
    "mlqa": "en es de ar hi vi zh",
    "tydiqa": "en ar bn fi id ko ru sw te",
}


def test_xtreme_rs_tasks_have_its_official_language_lists() -> None:
    """Each XTREME-R target is evaluated on exactly the languages XTREME-R's evaluate.py averages
    over (LAReQA: its 11 XQuAD-R languages; the evaluator has no list for it)."""
    by_official = {"udpos_xr": "udpos", "panx_xr": "panx", "xquad_xr": "xquad", "tatoeba_xr": "tatoeba"}
    for task in SUITES["xtreme-r"]:
        if task == "lareqa":
            continue
        official = XTREME_R_LANGUAGES[by_official.get(task, task)].split()
        assert sorted(TASKS[task].languages) == sorted(official), task
    assert len(TASKS["panx_xr"].languages) == 48 and len(TASKS["udpos_xr"].languages) == 38
    assert len(TASKS["tatoeba_xr"].languages) == 41 and len(TASKS["xquad_xr"].languages) == 12
    for task in ("panx", "udpos", "tatoeba", "xquad"):  # XTREME's own lists stay as they were
        assert set(TASKS[task].languages) < set(TASKS[f"{task}_xr"].languages)


def test_ud27_treebanks_are_concatenated_per_split_and_cleaned_as_xtreme_does(data: dict[str, str]) -> None:
    udpos = get_task("udpos_xr", data)
    test = udpos.load("test", "pl")  # pl_lfg's then pl_pud's (file-name order): 2 sentences each
    assert len(test) == 4 and test[0] == test[2]
    numbers = test[1]
    assert numbers.words == ("10000", "osób")  # the space inside "10 000" removed; the empty node 2.1 skipped
    assert numbers.tags == (UPOS.index("NUM"), UPOS.index("NOUN"))
    assert len(udpos.load("dev", "pl")) == 2  # the text-less sentence (all forms "_") is dropped
    assert udpos.load("dev", "en")[0].words == ("The", "dog", "barks", ".")  # XTREME's languages: google/xtreme


def test_xtreme_rs_files_say_what_is_missing_in_one_line(data: dict[str, str], tmp_path: Path) -> None:
    from stiltsearch.trainables.hub import DataUnavailable

    with pytest.raises(DataUnavailable, match=r"^data\.ud-2\.7: udpos_xr reads .* set `data: \{ud-2\.7: DIR\}`"):
        get_task("udpos_xr", {}).load("test", "pl")
    with pytest.raises(DataUnavailable, match=r"^data\.ud-2\.7: .* holds no UD_\* treebank folders"):
        get_task("udpos_xr", {"ud-2.7": str(tmp_path)}).load("test", "pl")
    with pytest.raises(DataUnavailable, match=r"^data\.laser-tatoeba: .*tatoeba\.lit-eng\.lit does not exist"):
        get_task("tatoeba_xr", data).load("dev", "lt")
    (tmp_path / "tatoeba.pol-eng.pol").write_text("a\nb\n")
    (tmp_path / "tatoeba.pol-eng.eng").write_text("a\n")
    with pytest.raises(DataUnavailable, match="line-aligned"):
        get_task("tatoeba_xr", {"laser-tatoeba": str(tmp_path)}).load("dev", "pl")
    (tmp_path / "UD_Polish-X").mkdir()
    (tmp_path / "UD_Polish-X" / "pl_x-ud-test.conllu").write_text("1\tNie\tnie\n")
    with pytest.raises(DataUnavailable, match="not CoNLL-U's 10"):
        get_task("udpos_xr", {"ud-2.7": str(tmp_path)}).load("test", "pl")


def test_a_config_needs_xtreme_rs_files_only_for_the_languages_it_evaluates(tmp_path: Path) -> None:
    from stiltsearch.search.config.reading import load_config
    from stiltsearch.search.launch.preflight import missing_resources

    base = {"model": "xlm-roberta-base", "intermediate_tasks": ["mnli"], "target_tasks": ["udpos_xr", "tatoeba_xr"], "languages": ["de"],
            "objectives": [{"name": "xtreme_score", "direction": "max"}],
            "output_dir": str(tmp_path)}
    every = missing_resources(load_config(None, **base))
    assert [p.split(":")[0] for p in every if p.startswith("data.")] == ["data.ud-2.7", "data.laser-tatoeba"]
    old_only = load_config(None, **base, eval_languages={"udpos_xr": ["en", "de"], "tatoeba_xr": ["de"]})
    assert not [p for p in missing_resources(old_only) if p.startswith("data.")]


def test_labels_are_mapped_by_name_not_by_id(tmp_path: Path) -> None:
    """A copy whose ClassLabel orders the names alphabetically (as jiant does) gives the same labels."""
    features = Features({"premise": Value("string"), "hypothesis": Value("string"),
                         "label": ClassLabel(names=["contradiction", "entailment", "neutral"])})
    (tmp_path / "de").mkdir()
    Dataset.from_dict({"premise": ["p", "q"], "hypothesis": ["h", "i"], "label": [0, 1]}, features=features).to_parquet(
        str(tmp_path / "de" / "validation.parquet"))
    examples = get_task("xnli", {"facebook/xnli": str(tmp_path)}).load("dev", "de")
    assert [ex.label for ex in examples] == [2, 0]  # contradiction, entailment in the HF order


def test_integer_labels_in_a_jsonl_copy_are_read_in_the_hubs_label_order(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A .jsonl/.csv copy loses the ClassLabel names: its integer ids are the hub's, i.e. the task's
    label order (it said `label '1' ... is not one of (...)`, and for PAN-X a bare tuple.index error)."""
    import json

    (tmp_path / "xnli" / "de").mkdir(parents=True)
    rows = [{"premise": "p", "hypothesis": "h", "label": 2}, {"premise": "q", "hypothesis": "i", "label": 0}]
    (tmp_path / "xnli" / "de" / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "xtreme" / "PAN-X.de").mkdir(parents=True)
    (tmp_path / "xtreme" / "PAN-X.de" / "validation.jsonl").write_text(
        json.dumps({"tokens": ["Berlin", "ist"], "ner_tags": [5, 0], "langs": ["de", "de"]}) + "\n")
    examples = get_task("xnli", {"facebook/xnli": str(tmp_path / "xnli")}).load("dev", "de")
    assert [ex.label for ex in examples] == [2, 0]  # contradiction, entailment
    out = capsys.readouterr().out
    assert "task xnli: column 'label' holds integer ids, not names" in out and "('entailment', 'neutral'" in out
    (tagged,) = get_task("panx", {"google/xtreme": str(tmp_path / "xtreme")}).load("dev", "de")
    assert tagged.tags == (5, 0)  # B-LOC, O
    (tmp_path / "xnli" / "de" / "validation.jsonl").write_text(json.dumps({**rows[0], "label": 3}) + "\n")
    with pytest.raises(ValueError, match=r"^task 'xnli': label '3' in column 'label' is not one of \('entailment', "
                                         r"'neutral', 'contradiction'\) \(nor an id 0..2 in that order\)$"):
        get_task("xnli", {"facebook/xnli": str(tmp_path / "xnli")}).load("dev", "de")


def test_a_copy_that_ships_its_features_keeps_their_label_names(tmp_path: Path) -> None:
    """dataset_info.json beside the files gives the ClassLabel back: its names, in its own order
    (here alphabetical, as jiant writes them), decide, not the task's order."""
    import json

    from datasets import DatasetInfo

    (tmp_path / "de").mkdir()
    rows = [{"premise": "p", "hypothesis": "h", "label": 0}, {"premise": "q", "hypothesis": "i", "label": 1}]
    (tmp_path / "de" / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    features = Features({"premise": Value("string"), "hypothesis": Value("string"),
                         "label": ClassLabel(names=["contradiction", "entailment", "neutral"])})
    DatasetInfo(features=features).write_to_directory(str(tmp_path / "de"))
    examples = get_task("xnli", {"facebook/xnli": str(tmp_path)}).load("dev", "de")
    assert [ex.label for ex in examples] == [2, 0]  # by name: contradiction, entailment
    (tmp_path / "de" / "dataset_info.json").write_text("{}")
    with pytest.raises(hub.DataUnavailable, match=r"^data: .*dataset_info.json does not describe features"):
        get_task("xnli", {"facebook/xnli": str(tmp_path)}).load("dev", "de")


def test_an_unreachable_hub_names_the_dataset_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: nothing to fall back on
    with pytest.raises(hub.DataUnavailable) as err:
        get_task("xnli").load("dev", "de")
    message = str(err.value)
    assert message.startswith("data.facebook/xnli: cannot load facebook/xnli (config de, split validation)")
    assert "`data: {facebook/xnli: DIR}`" in message and "\n" not in message


def test_a_local_copy_without_the_split_says_what_it_expected(tmp_path: Path) -> None:
    with pytest.raises(hub.DataUnavailable, match=r"data.google/xtreme: .* has no files for google/xtreme "
                                                  r"\(config PAN-X.fr, split validation\)"):
        get_task("panx", {"google/xtreme": str(tmp_path)}).load("dev", "fr")
    with pytest.raises(hub.DataUnavailable, match="data.ccg: CCG is not on the Hugging Face hub"):
        get_task("ccg").load("train", "en")


def test_broken_local_files_are_one_line_naming_the_file_and_the_fix(data: dict[str, str], tmp_path: Path) -> None:
    """A clone without Git LFS (pointer files named *.parquet), and a truncated parquet file: they
    gave a raw ArrowInvalid."""
    split = tmp_path / "xtreme" / "PAN-X.fr" / "validation-00000-of-00001.parquet"
    split.parent.mkdir(parents=True)
    split.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a21\nsize 23456\n")
    with pytest.raises(hub.DataUnavailable, match=r"^data.google/xtreme: .*validation-00000-of-00001.parquet is a Git "
                                                  r"LFS pointer, not the data; fetch the files \(`git lfs pull`"):
        get_task("panx", {"google/xtreme": str(tmp_path / "xtreme")}).load("dev", "fr")
    whole = Path(data["google/xtreme"]) / "PAN-X.de" / "validation-00000-of-00001.parquet"
    split.write_bytes(whole.read_bytes()[:200])  # cut short
    with pytest.raises(hub.DataUnavailable, match=r"^data.google/xtreme: cannot read .*validation-00000-of-00001."
                                                  r"parquet \(.*\); replace it with a complete copy of google/xtreme"):
        get_task("panx", {"google/xtreme": str(tmp_path / "xtreme")}).load("dev", "fr")


def test_a_dataset_without_configs_is_found_in_the_parquet_converters_default_folder(data: dict[str, str],
                                                                                    tmp_path: Path) -> None:
    """Rowan/hellaswag has no named config: the hub's parquet conversion keeps it in default/<split>/."""
    import shutil

    copy = tmp_path / "hellaswag" / "default" / "validation"
    copy.mkdir(parents=True)
    shutil.copy(Path(data["Rowan/hellaswag"]) / "data" / "validation-00000-of-00001.parquet", copy / "0000.parquet")
    assert len(get_task("hellaswag", {"Rowan/hellaswag": str(tmp_path / "hellaswag")}).load("dev", "en")) == 2


def test_mewslix_reads_the_candidate_set_and_names_what_is_missing(data: dict[str, str], tmp_path: Path) -> None:
    assert get_task("mewslix", data).candidates["Q64"] == "Berlin. Berlin is the capital of Germany."
    with pytest.raises(hub.DataUnavailable, match="data.mewsli-x: Mewsli-X is not on the Hugging Face hub"):
        get_task("mewslix").load("dev", "de")
    with pytest.raises(hub.DataUnavailable, match="candidate_set_entities.jsonl does not exist"):
        _ = get_task("mewslix", {"mewsli-x": str(tmp_path)}).candidates


def test_ccg_reads_its_tag_set_from_the_file(data: dict[str, str]) -> None:
    task = get_task("ccg", data)
    assert task.num_labels == len(CCG_TAGS) and task.labels[1] == "(S\\NP)/NP"
    copy = write_ccg(Path(data["ccg"]).parent / "ccg-no-tags")
    (Path(copy) / "tags_to_id.json").unlink()
    with pytest.raises(hub.DataUnavailable, match=r"^data.ccg: .*tags_to_id.json does not exist; copy jiant's"):
        get_task("ccg", {"ccg": copy}).load("train", "en")


def test_mewslix_skips_mentions_with_blank_entity_ids_and_names_unknown_ones(data: dict[str, str],
                                                                            tmp_path: Path) -> None:
    """Blank ids (how XTREME's preprocessing writes mentions without gold) gave ``KeyError: ''``."""
    import json

    copy = Path(write_mewslix(tmp_path / "mewsli"))
    dev = copy / "wikinews_mentions-dev.jsonl"
    docs = [json.loads(line) for line in dev.read_text().splitlines()]
    docs[0]["mentions"].append({**docs[0]["mentions"][0], "entity_id": ""})
    dev.write_text("".join(json.dumps(d) + "\n" for d in docs))
    assert [m.entity_id for m in get_task("mewslix", {"mewsli-x": str(copy)}).load("dev", "de")] == ["Q64"]
    docs[0]["mentions"][0]["entity_id"] = ""
    docs[0]["mentions"].append({**docs[0]["mentions"][1], "entity_id": "Q1"})
    dev.write_text("".join(json.dumps(d) + "\n" for d in docs))
    with pytest.raises(hub.DataUnavailable, match=r"^data.mewsli-x: wikinews_mentions-dev.jsonl links a mention to "
                                                  r"'Q1', which candidate_set_entities.jsonl lacks"):
        get_task("mewslix", {"mewsli-x": str(copy)}).load("dev", "de")
    docs[0]["mentions"] = docs[0]["mentions"][:1]
    dev.write_text("".join(json.dumps(d) + "\n" for d in docs))
    with pytest.raises(hub.DataUnavailable, match=r"has no mention with an entity id in 'de'"):
        get_task("mewslix", {"mewsli-x": str(copy)}).load("dev", "de")


@pytest.mark.parametrize("name", REAL)
def test_every_real_task_encodes_with_its_head(name: str, data: dict[str, str], tiny_model: str) -> None:
    from stiltsearch.trainables.model import load_tokenizer

    task = get_task(name, data)
    split = "dev" if "dev" in task.splits else "test"
    language = "de" if name == "mewslix" else next(lang for lang in ("en", "de", "fr", "et")
                                                   if lang in task.eval_languages(split))
    examples = task.load(split, language)
    batch = heads.encode(task.head, load_tokenizer(tiny_model), examples, 64)
    if task.head == "span":
        assert int(batch["example"].max()) == len(examples) - 1
    else:
        assert batch["input_ids"].shape[0] == len(examples)
    if task.head in ("classification", "choice"):
        assert int(batch["labels"].max()) < task.num_labels


def test_the_registry_holds_the_paper_and_both_benchmarks() -> None:
    assert all(TASKS[t].role == "intermediate" for t in PAPER_INTERMEDIATE) and len(PAPER_INTERMEDIATE) == 9
    for suite in SUITES.values():
        assert all(TASKS[t].role == "target" for t in suite)
    assert "pawsx" not in SUITES["xtreme-r"] and "bucc2018" not in SUITES["xtreme-r"] and "xcopa" in SUITES["xtreme-r"]
    heads_of = {t: TASKS[t].head for t in SUITES["xtreme"]}
    assert heads_of == {"xnli": "classification", "pawsx": "classification", "udpos": "tagging", "panx": "tagging",
                        "xquad": "span", "mlqa": "span", "tydiqa": "span", "bucc2018": "retrieval",
                        "tatoeba": "retrieval"}
    assert len(TASKS["xnli"].languages) == 15 and len(TASKS["panx"].languages) == 40
    assert len(TASKS["udpos"].languages) == 33 and len(TASKS["tatoeba"].languages) == 36


def test_long_contexts_are_windowed_and_the_answer_is_found_in_any_window(tiny_model: str) -> None:
    """A context several windows long: the answer's tokens are labelled in each window holding it, the
    others point at <s>; decoding logits that mark the answer in one window gives back its text."""
    from stiltsearch.trainables.model import load_tokenizer

    tokenizer = load_tokenizer(tiny_model)
    context = " ".join(f"word{i} ." for i in range(60)) + " The answer is Maria Lopez here ."
    example = SpanExample("Who is it ?", context, ("Maria Lopez",), context.index("Maria Lopez"))
    batch = heads.encode("span", tokenizer, [example, example], 48)
    windows = int((batch["example"] == 0).sum())
    assert windows >= 3 and batch["input_ids"].shape[0] == 2 * windows
    labelled = [row for row in range(windows) if batch["labels"][row, 0] > 0]
    assert labelled and labelled[-1] == windows - 1  # the answer is at the end of the context
    for row in labelled:
        start, end = batch["labels"][row].tolist()
        assert context[int(batch["offsets"][row, start, 0]):int(batch["offsets"][row, end, 1])] == "Maria Lopez"
    logits = torch.zeros(batch["input_ids"].shape[0], batch["input_ids"].shape[1], 2)
    row = labelled[0]
    logits[row, batch["labels"][row, 0], 0] = logits[row, batch["labels"][row, 1], 1] = 10.0
    predictions = heads.Head("span", 8, 2).decode(logits, batch)
    assert len(predictions) == 2
    start, end, margin = predictions[0]
    assert context[start:end] == "Maria Lopez" and margin < 0  # the span beats "no answer"


def test_a_long_sentence_is_tagged_in_overlapping_windows_and_every_word_gets_a_prediction(tiny_model: str) -> None:
    """60 words at max length 16: every word is labelled in some window (truncation left 46 words
    unpredicted, scored as tag 0); each word is read in the window where it is farthest from an edge."""
    from stiltsearch.trainables.model import load_tokenizer

    tokenizer = load_tokenizer(tiny_model)
    words = tuple(f"w{i}" for i in range(60))
    short = TagExample(("Maria", "Lopez", "."), (1, 2, 0))
    example = TagExample(words, tuple(i % 7 for i in range(60)))
    batch = heads.encode("tagging", tokenizer, [short, example], 16)
    rows = batch["example"].tolist()
    assert rows[0] == 0 and rows.count(0) == 1 and rows.count(1) >= 5  # the short one is one window
    assert int((batch["input_ids"] != tokenizer.pad_token_id).sum(1).max()) <= 16
    labelled = {int(w) for row in range(1, len(rows)) for w in batch["word_index"][row] if w >= 0}
    assert labelled == set(range(60))  # every word, in at least one window
    for row in range(len(rows)):  # each labelled position carries its own word's tag
        for position in (batch["word_index"][row] >= 0).nonzero().flatten().tolist():
            ex = (short, example)[rows[row]]
            assert batch["labels"][row, position] == ex.tags[int(batch["word_index"][row, position])]
    # logits that say "I am window r" (tag r): each word must come from a window holding it away from an edge
    logits = torch.full((*batch["input_ids"].shape, len(rows)), -1.0)
    for row in range(len(rows)):
        logits[row, :, row] = 1.0
    tags = heads.Head("tagging", 8, len(rows)).decode(logits, batch)
    assert tags[0] == [0, 0, 0] and len(tags[1]) == 60
    for word, window in enumerate(tags[1]):
        held = (batch["word_index"][window] >= 0).nonzero().flatten().tolist()
        order = [int(batch["word_index"][window, p]) for p in held]
        k = order.index(word)
        if 3 <= word < 57:  # away from the sentence's ends there is always a window with context both sides
            assert 0 < k < len(order) - 1, (word, window, order)


def test_a_trial_runs_the_real_tasks_from_local_copies_on_a_local_model(data: dict[str, str], tiny_model: str,
                                                                       cache: Path) -> None:
    """The whole pipeline on real-task loaders: a model given as a directory, phase 2 on two English
    tasks (one by its epoch recipe), phase 3 on a target of each head kind, BUCC and Tatoeba by
    retrieval; every per-language, per-task and group score lands in the metrics."""
    from stiltsearch.trainables.params import TrialParams
    from stiltsearch.trainables.pipeline import run_trial
    from stiltsearch.trainables.plan import Recipe
    from stiltsearch.trainables.settings import MeterSettings, TrialSettings

    languages = {"xnli": ("en", "de", "sw"), "panx": ("en", "de"), "xquad": ("en", "de"), "xcopa": ("et", "sw"),
                 "bucc2018": ("de", "fr"), "tatoeba": ("de", "sw"), "lareqa": ("en", "de"),
                 "mewslix": ("de", "ja")}  # the languages the fixtures hold
    settings = TrialSettings(model=tiny_model, target_tasks=tuple(languages), cache_dir=str(cache / "real"),
                             data=data, eval_languages=languages, intermediate_steps=6, target_steps=4, batch_size=4,
                             qa_max_length=48, recipes={"hellaswag": Recipe(epochs=2, batch_size=1),
                                                        "xnli": Recipe(epochs=1)},
                             meter=MeterSettings(warmup=0, repeats=1, max_sequences=16))
    params = TrialParams(intermediate_tasks=("mnli", "hellaswag"), intermediate_lr=1e-4, train_languages=("de",),
                         target_lr=1e-4, layers_kept=2, max_seq_length=32)
    metrics = run_trial(settings, params, lambda _: None)
    assert metrics["phase2/cache"] == "miss"
    assert len(metrics["phase2/loss_curve"]) >= 1
    assert metrics["phase3/xnli/train_languages"] == "en,de" and metrics["phase3/xnli/steps"] == 3  # 12 rows, batch 4
    assert metrics["phase3/panx/steps"] == 4  # no recipe: the step budget
    scored = {tuple(k.split("/")[1:]) for k in metrics if k.startswith("eval/") and k.count("/") == 2}
    assert scored == {(task, lang) for task, langs in languages.items() for lang in langs} | {
        ("group", g) for g in ("classification", "multi_choice", "structured_prediction", "qa", "retrieval")}
    assert metrics["eval/group/multi_choice"] == metrics["eval/xcopa"]  # XTREME-R's: XCOPA in two groups
    retrieval = ("bucc2018", "tatoeba", "lareqa", "mewslix")
    assert metrics["eval/group/retrieval"] == pytest.approx(sum(metrics[f"eval/{t}"] for t in retrieval) / 4)
    # two candidate entities, one relevant: mAP@20 is 100 (found first) or 50 (found second)
    assert metrics["eval/mewslix/de"] in (50.0, 100.0)
    # LAReQA and Mewsli-X: a dual encoder fine-tuned first (on SQuAD, on the Wikipedia pairs), as XTREME-R does
    for task in ("lareqa", "mewslix"):
        assert metrics[f"phase3/{task}/train_languages"] == "en" and metrics[f"phase3/{task}/steps"] == 4
    assert "phase3/tatoeba/steps" not in metrics  # Tatoeba and BUCC stay untrained
    assert "phase3/bucc2018/de/threshold" in metrics
    assert 0 <= metrics["xtreme_score"] <= 100 and metrics["tokens_per_sec"] > 0


@pytest.mark.slow
def test_a_search_on_real_tasks_runs_through_the_cli(data: dict[str, str], tiny_model: str, tmp_path: Path) -> None:
    """`stiltsearch run` with a model directory and local copies of the real datasets: the driver's
    real-model path (depth from config.json), the data and language settings through Ray to the
    trials, and every trial's XTREME breakdown in MLflow."""
    import os
    import subprocess
    import sys

    import yaml
    from mlflow.tracking import MlflowClient

    config = {
        "name": "real", "model": tiny_model, "output_dir": str(tmp_path / "runs"),
        "intermediate_tasks": ["mnli", "squad"], "target_tasks": ["xnli", "panx", "tatoeba"], "languages": ["de"],
        "eval_languages": {"xnli": ["en", "de"], "panx": ["en", "de"], "tatoeba": ["de"]},
        "data": {k: v for k, v in data.items() if k in ("nyu-mll/glue", "rajpurkar/squad", "facebook/xnli",
                                                        "google/xtreme")},
        "search": {"num_trials": 3, "max_concurrent": 2},
        "space": {"layers_kept": [1, 2], "max_seq_length": [32]},
        "training": {"intermediate_steps": 6, "target_steps": 4, "batch_size": 4, "recipes": {"xnli": {"epochs": 1}}},
        "throughput": {"repeats": 1, "warmup": 0, "max_sequences": 16},
        "mlflow": {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db"},
    }
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(config))
    dry = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", "run", str(path), "--dry-run"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert dry.returncode == 0 and f"phase 1: {Path(tiny_model).name} (2 layers)" in dry.stdout, dry.stderr
    done = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", "run", str(path)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("real").experiment_id])
    trials = [r for r in runs if r.data.tags.get("stiltsearch.kind") == "trial"]
    assert len(trials) == 3 and all(r.info.status == "FINISHED" for r in trials)
    for run in trials:
        assert {"eval/xnli/de", "eval/panx/en", "eval/tatoeba/de", "eval/group/retrieval", "xtreme_score",
                "tokens_per_sec"} <= set(run.data.metrics)
        assert "eval/xnli/ar" not in run.data.metrics  # only the languages asked for


HELD = {"xnli": ("en", "de", "sw"), "pawsx": ("en", "de", "ja"), "udpos": ("en",), "panx": ("en", "de"),
        "xquad": ("en", "de"), "mlqa": ("en", "de"), "tydiqa": ("en", "ar", "sw"), "bucc2018": ("de", "fr"),
        "tatoeba": ("de", "sw"), "xcopa": ("et", "sw"), "lareqa": ("en", "de"), "mewslix": ("de", "ja"),
        # XTREME-R's: an old language and a new one each (PAN-X az from WikiANN, UDPOS pl from UD v2.7, ...)
        "panx_xr": ("en", "az"), "udpos_xr": ("en", "pl"), "xquad_xr": ("en", "ro"), "tatoeba_xr": ("de", "pl")}  # fixtures'
GROUPS = {"xtreme": {"classification": ("xnli", "pawsx"), "structured_prediction": ("udpos", "panx"),
                     "qa": ("xquad", "mlqa", "tydiqa"), "retrieval": ("bucc2018", "tatoeba")},
          "xtreme-r": {"classification": ("xnli", "xcopa"), "multi_choice": ("xcopa",),
                       "structured_prediction": ("udpos_xr", "panx_xr"), "qa": ("xquad_xr", "mlqa", "tydiqa"),
                       "retrieval": ("tatoeba_xr", "lareqa", "mewslix")}}


@pytest.mark.slow
@pytest.mark.parametrize("suite", ["xtreme", "xtreme-r"])
def test_the_papers_config_runs_a_trial_on_every_target_of_each_benchmark(suite: str, data: dict[str, str],
                                                                          tiny_model: str, cache: Path) -> None:
    """configs/paper.yaml as shipped (its intermediate tasks and recipes, ZeRO 0, bf16, micro-batches, its
    objectives; lengths cut to the tiny model's 128) on the fixture copies: one trial over every XTREME
    target, TyDiQA-GoldP included, and one over XTREME-R's, LAReQA and Mewsli-X with their
    dual-encoder phase 3. Every target and language is scored, the groups are the benchmark's, and
    the XTREME score is the mean over the targets."""
    from stiltsearch.search.config.coerce import ConfigError
    from stiltsearch.search.config.compose import trial_settings
    from stiltsearch.search.config.reading import load_config, read_yaml
    from stiltsearch.search.config.schema import _datasets
    from stiltsearch.search.launch.models import check_models, resolve_models
    from stiltsearch.trainables.params import TrialParams
    from stiltsearch.trainables.pipeline import run_trial

    targets = SUITES[suite]
    paper = Path(__file__).resolve().parents[1] / "configs" / "paper.yaml"
    read = {source for t in PAPER_INTERMEDIATE + targets for source in _datasets(t)}
    recipes = {t: r for t, r in read_yaml(paper)["training"]["recipes"].items() if t in PAPER_INTERMEDIATE + targets}
    overrides = {"model": tiny_model, "target_tasks": list(targets), "data": {k: v for k, v in data.items() if k in read},
                 "eval_languages": {t: list(HELD[t]) for t in targets}, "space.layers_kept": [2],
                 "training.target_steps": 4, "training.recipes": recipes, "throughput.max_sequences": 16,
                 "throughput.repeats": 1, "throughput.warmup": 0}
    with pytest.raises(ConfigError, match=r"space.max_seq_length: 256 tokens is more than .* \(128 positions\)"):
        check_models(load_config(paper, **overrides))  # the paper's lengths do not fit the tiny model's table
    cfg = load_config(paper, **overrides, **{"space.max_seq_length": [128], "training.max_length": 128,
                                             "training.qa_max_length": 128})
    check_models(cfg)
    assert cfg.objective_names == ["xtreme_score", "tokens_per_sec"] and "ccg" in cfg.intermediate_tasks
    settings = trial_settings(cfg, resolve_models(cfg, cache), cache / f"paper-{suite}")
    params = TrialParams(intermediate_tasks=("mnli", "squad", "ccg"), intermediate_lr=1e-5, target_lr=1e-5,
                         layers_kept=2, max_seq_length=128, precision="bf16")  # zero-shot, as the paper
    metrics = run_trial(settings, params, lambda _: None)
    assert metrics["phase2/cache"] == "miss"
    for task in targets:
        assert {f"eval/{task}/{lang}" for lang in HELD[task]} <= set(metrics), task
    assert metrics["xtreme_score"] == pytest.approx(sum(metrics[f"eval/{t}"] for t in targets) / len(targets))
    groups = {k.removeprefix("eval/group/") for k in metrics if k.startswith("eval/group/")}
    assert groups == set(GROUPS[suite])
    for group, members in GROUPS[suite].items():
        assert metrics[f"eval/group/{group}"] == pytest.approx(sum(metrics[f"eval/{t}"] for t in members) / len(members))
    # TyDiQA-GoldP is trained on SQuAD 1.1, as XTREME does: by the model the trial trained once for its QA targets
    source = metrics["phase3/tydiqa/trained_with"]
    assert source in targets and metrics[f"phase3/{source}/train_languages"] == "en"
    if suite == "xtreme-r":
        for task in ("lareqa", "mewslix"):
            assert metrics[f"phase3/{task}/steps"] == 4 and metrics[f"phase3/{task}/loss_first"] > 0
    assert metrics["non_english_nli"] == pytest.approx((metrics["eval/xnli/de"] + metrics["eval/xnli/sw"]) / 2)


def test_qa_targets_that_train_on_squad_share_one_fine_tuning_per_trial(data: dict[str, str], tiny_model: str,
                                                                         tmp_path: Path) -> None:
    """XQuAD, MLQA and TyDiQA all fine-tune on English SQuAD 1.1 with one recipe: a trial trains that
    model once and scores each target with it, and each score is the one the target gets alone."""
    import dataclasses

    from stiltsearch.trainables.checkpoint import TrialCheckpoint
    from stiltsearch.trainables.params import TrialParams
    from stiltsearch.trainables.pipeline import run_trial
    from stiltsearch.trainables.settings import MeterSettings, TrialSettings
    from stiltsearch.trainables.trialdir import read_ledger

    languages = {"xquad": ("en", "de"), "mlqa": ("en", "de"), "tydiqa": ("en", "ar", "sw")}
    settings = TrialSettings(model=tiny_model, target_tasks=tuple(languages), cache_dir=str(tmp_path / "cache"),
                             data=data, eval_languages=languages, intermediate_steps=4, target_steps=4, batch_size=4,
                             qa_max_length=48, meter=MeterSettings(warmup=0, repeats=1, max_sequences=16))
    params = TrialParams(target_lr=1e-4, layers_kept=2, max_seq_length=32)
    metrics = run_trial(settings, params, lambda _: None, TrialCheckpoint(tmp_path / "0001"))
    ledger = read_ledger(tmp_path / "0001")
    assert [line for line in ledger if line.startswith("phase3")] == [
        "phase3 xquad trained", "phase3 mlqa scored with xquad's model", "phase3 tydiqa scored with xquad's model",
        "phase3 xquad trained once, reused 2 times (mlqa, tydiqa)"]
    assert metrics["phase3/mlqa/trained_with"] == metrics["phase3/tydiqa/trained_with"] == "xquad"
    assert "phase3/mlqa/steps" not in metrics and metrics["phase3/xquad/steps"] == 4
    for task in ("mlqa", "tydiqa"):
        alone = run_trial(dataclasses.replace(settings, target_tasks=(task,)), params, lambda _: None)
        assert alone[f"phase3/{task}/steps"] == 4
        assert {k: v for k, v in alone.items() if k.startswith(f"eval/{task}")} == {
            k: v for k, v in metrics.items() if k.startswith(f"eval/{task}")}
