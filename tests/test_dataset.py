"""Tests for bayesrb.dataset: field splits, the sharded data-set store, human labels, label purity, the CLI."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from bayesrb.cli import main
from bayesrb.dataset import (
    VisitSource,
    apply_human_labels,
    assign_splits,
    build_dataset,
    format_purity,
    label_purity,
    open_dataset,
    read_human_labels,
)
from bayesrb.errors import BadInputError
from bayesrb.stamps import CHANNELS_BASE, SHARD_META_COLUMNS, read_shard, write_shard

SIZE = 15
ATTRS = {"units": "ADU", "pixel_scale_arcsec": 1.24, "stamp_size": SIZE, "seed": 1, "config_hash": "abc"}
FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
#: field -> number of visits; E1 is the evaluation field.
FIELDS = {"F1": 2, "F2": 2, "F3": 2, "F4": 2, "F5": 2, "E1": 2}


def shard_meta(visit: str, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Candidate i: i % 4 == 0 minor planet, 1 or 2 random junk, 3 unlabelled; truth set for known purity."""
    i = np.arange(n)
    truth = np.where(i % 4 == 0, "mp", np.where(i % 4 == 3, "sn", np.where(i % 2 == 0, "cosmic_ray", "")))
    truth[4] = "hot_pixel"  # a minor-planet label on an artefact
    truth[1] = "agn"  # a random-junk label on a real source
    return {
        "candidate_id": np.array([f"{visit}-{k:05d}" for k in i]), "visit": np.full(n, visit),
        "x": rng.uniform(0, 100, n), "y": rng.uniform(0, 100, n), "ra": rng.uniform(10, 11, n),
        "dec": rng.uniform(-5, -4, n), "mag": rng.uniform(15, 20, n), "mag_err": rng.uniform(0.01, 0.2, n),
        "snr": rng.uniform(5, 50, n), "fwhm": rng.uniform(2, 4, n), "sign": np.ones(n, np.int8),
        "flags": np.zeros(n, np.int32), "label": np.full(n, -1, np.int8), "kind": np.full(n, ""),
        "stamp_flags": rng.integers(0, 3, n).astype(np.int16), "truth_kind": truth,
        "truth_mag": rng.uniform(15, 21, n),
    }


def label_table(meta: dict[str, np.ndarray], evaluation: bool) -> Table:
    i = np.arange(len(meta["candidate_id"]))
    kind = np.where(i % 4 == 0, "mp", np.where(i % 4 == 3, "injected_sn" if evaluation else "", "randjunk"))
    rows = kind != ""
    label = np.isin(kind[rows], ["mp", "injected_sn"]).astype(np.int8)
    return Table({"candidate_id": meta["candidate_id"][rows], "label": label, "kind": kind[rows],
                  "mp_designation": np.where(kind[rows] == "mp", "K20A00A", ""),
                  "mp_predicted_mag": np.where(kind[rows] == "mp", 19.5, np.nan)})


def augment_meta(visit: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = 3
    return {
        "candidate_id": np.array([f"{visit}-syn{k}" for k in range(n)]), "visit": np.full(n, visit),
        "x": rng.uniform(0, 100, n), "y": rng.uniform(0, 100, n), "ra": rng.uniform(10, 11, n),
        "dec": rng.uniform(-5, -4, n), "mag": rng.uniform(15, 20, n), "mag_err": np.full(n, 0.05),
        "snr": np.full(n, 20.0), "fwhm": np.full(n, 3.0), "sign": np.ones(n, np.int8), "flags": np.zeros(n, np.int32),
        "label": np.array([1, 1, 0], np.int8), "kind": np.array(["syntransient", "syntransient", "glxresid"]),
        "stamp_flags": np.zeros(n, np.int16), "host_offset_arcsec": rng.uniform(0, 3, n),
        "host_mag": rng.uniform(16, 19, n), "mp_mag": rng.uniform(17, 20, n),
    }


def make_survey(root: Path, *, size: int = SIZE) -> tuple[list[VisitSource], dict[str, np.ndarray]]:
    """Write shards, label tables and augmentation shards; return the sources and every stamp by candidate id."""
    sources, stamps_by_id = [], {}
    for f, (field, n_visits) in enumerate(FIELDS.items()):
        for v in range(n_visits):
            visit = f"{field}v{v}"
            rng = np.random.default_rng(100 * f + v)
            meta = shard_meta(visit, 12 + 4 * f + v, rng)
            augment = None
            if field in ("F1", "F2") and v == 0:
                augment = root / f"{visit}-augment.zarr"
                _write(augment, augment_meta(visit, rng), rng, stamps_by_id, size)
            shard = root / f"{visit}.zarr"
            _write(shard, meta, rng, stamps_by_id, size)
            labels = root / f"{visit}-labels.ecsv"
            label_table(meta, field == "E1").write(labels, format="ascii.ecsv")
            sources.append(VisitSource(visit, field, shard, labels, augment, evaluation=field == "E1"))
    return sources, stamps_by_id


def _write(path: Path, meta: dict, rng: np.random.Generator, stamps_by_id: dict, size: int) -> None:
    stamps = rng.normal(size=(len(meta["candidate_id"]), size, size, len(CHANNELS_BASE))).astype(np.float32)
    write_shard(path, stamps, CHANNELS_BASE, meta, ATTRS | {"stamp_size": size})
    stamps_by_id.update(zip(meta["candidate_id"], stamps, strict=True))


def file_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """Inputs shared by the tests that only read them."""
    return make_survey(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def built(tmp_path_factory, survey):
    sources, stamps_by_id = survey
    path = tmp_path_factory.mktemp("built") / "data.zarr"
    summary = build_dataset(path, sources, fractions=FRACTIONS, seed=3, chunk_stamps=4, shard_stamps=16,
                            attrs={"config_hash": "h1"})
    return open_dataset(path), summary, stamps_by_id, path


# ----------------------------------------------------------------------------------------------- splits


def test_assign_splits_groups_fields_and_meets_fractions():
    rng = np.random.default_rng(0)
    counts = {f"F{i:02d}": int(c) for i, c in enumerate(rng.integers(50, 500, 40))}
    counts["EVAL"] = 10_000
    assignment = assign_splits(counts, FRACTIONS, seed=7, eval_fields={"EVAL", "EVAL2"})

    assert set(assignment) == set(counts) | {"EVAL2"}
    assert assignment["EVAL"] == assignment["EVAL2"] == "eval"
    total = sum(c for f, c in counts.items() if f != "EVAL")
    for split, fraction in FRACTIONS.items():
        achieved = sum(c for f, c in counts.items() if assignment[f] == split) / total
        assert achieved == pytest.approx(fraction, abs=0.01), split
    assert assign_splits(counts, FRACTIONS, seed=7, eval_fields={"EVAL", "EVAL2"}) == assignment
    assert assign_splits(counts, FRACTIONS, seed=8, eval_fields={"EVAL", "EVAL2"}) != assignment


def test_assign_splits_gives_every_positive_split_a_field():
    counts = {"a": 100, "b": 100, "c": 100, "d": 100}
    assignment = assign_splits(counts, {"train": 0.98, "val": 0.01, "test": 0.01}, seed=1, eval_fields=set())
    assert sorted(assignment.values()).count("train") == 2
    assert sorted(assignment.values()).count("val") == sorted(assignment.values()).count("test") == 1
    no_test = assign_splits(counts, {"train": 0.75, "val": 0.25}, seed=1, eval_fields=set())
    assert sorted(no_test.values()) == ["train", "train", "train", "val"]


def test_assign_splits_rejects_bad_fractions_and_too_few_fields():
    with pytest.raises(ValueError, match="sum to 1"):
        assign_splits({"a": 1, "b": 1, "c": 1}, {"train": 0.8, "val": 0.1, "test": 0.2}, 0, set())
    with pytest.raises(ValueError, match="2 non-evaluation field"):
        assign_splits({"a": 1, "b": 1, "e": 5}, FRACTIONS, 0, {"e"})
    with pytest.raises(ValueError, match="unknown split"):
        assign_splits({"a": 1}, {"training": 1.0}, 0, set())


# ----------------------------------------------------------------------------------------------- store


def test_store_splits_by_field_and_keeps_eval_apart(built):
    dataset, summary, _, _ = built
    split, field = dataset.meta["split"], dataset.meta["field"]
    for name in ("train", "val", "test", "eval"):
        rows = slice(*dataset.attrs["split_ranges"][name])
        assert np.all(split[rows] == name)
        assert sorted(set(field[rows].tolist())) == dataset.attrs["split_fields"][name]
    assert dataset.attrs["split_ranges"]["train"][0] == 0
    assert dataset.attrs["split_ranges"]["eval"][1] == len(dataset) == dataset.attrs["n_stamps"]
    fields_per_split = {f: set(split[field == f].tolist()) for f in set(field.tolist())}
    assert all(len(s) == 1 for s in fields_per_split.values())
    assert fields_per_split["E1"] == {"eval"}
    assert set(dataset.meta["field"][np.char.startswith(dataset.meta["kind"], "injected_")]) == {"E1"}
    training = split != "eval"
    fraction = {s: np.sum(split == s) / training.sum() for s in FRACTIONS}
    for name, wanted in FRACTIONS.items():
        assert fraction[name] == pytest.approx(wanted, abs=0.1), name
    assert summary["class_counts"]["eval"] == {
        "real": int(np.sum((split == "eval") & (dataset.meta["label"] == 1))),
        "bogus": int(np.sum((split == "eval") & (dataset.meta["label"] == 0)))}
    assert summary["kind_counts"]["eval"]["injected_sn"] == 8 + 8  # 32 and 33 candidates, i % 4 == 3


def test_store_rows_match_sources(built, survey):
    dataset, _, stamps_by_id, _ = built
    sources, _ = survey
    ids = dataset.meta["candidate_id"]
    n_labelled = sum(len(Table.read(s.labels, format="ascii.ecsv")) for s in sources)
    assert len(ids) == len(set(ids.tolist())) == n_labelled + 2 * 3  # two visits have 3 augmentation rows
    stamps = dataset.stamps[...]
    for row, cid in enumerate(ids):
        np.testing.assert_array_equal(stamps[row], stamps_by_id[cid], err_msg=cid)
    assert dataset.channels == CHANNELS_BASE
    assert dataset.attrs["stamp_size"] == SIZE and dataset.attrs["units"] == "ADU"
    assert dataset.attrs["config_hash"] == "h1" and dataset.attrs["seed"] == 3

    meta = dataset.meta
    assert list(meta)[: len(SHARD_META_COLUMNS)] == list(SHARD_META_COLUMNS)
    augmented = np.char.find(ids, "-syn") >= 0
    mp = meta["kind"] == "mp"
    assert np.all(meta["label"][mp] == 1) and np.all(meta["mp_designation"][mp] == "K20A00A")
    np.testing.assert_array_equal(meta["mp_predicted_mag"][mp], 19.5)
    assert np.all(np.isnan(meta["mp_predicted_mag"][~mp])) and np.all(meta["mp_designation"][~mp] == "")
    assert np.all(np.isnan(meta["host_mag"][~augmented])) and not np.any(np.isnan(meta["host_mag"][augmented]))
    assert np.all(meta["truth_kind"][augmented] == "") and np.all(np.isnan(meta["truth_mag"][augmented]))
    assert meta["stamp_flags"].dtype == np.int16 and meta["label"].dtype == np.int8
    assert np.all(meta["label_source"][augmented] == "augment") and np.all(meta["label_source"][~augmented] == "auto")


def test_store_uses_sharding_codec_with_requested_shapes(built):
    dataset, _, _, store = built
    metadata = json.loads((store / "stamps" / "zarr.json").read_text())
    assert metadata["chunk_grid"]["configuration"]["chunk_shape"] == [16, SIZE, SIZE, 4]
    (codec,) = metadata["codecs"]
    assert codec["name"] == "sharding_indexed"
    assert codec["configuration"]["chunk_shape"] == [4, SIZE, SIZE, 4]
    inner = {c["name"]: c.get("configuration", {}) for c in codec["configuration"]["codecs"]}
    assert inner["blosc"]["cname"] == "zstd"
    shard_files = [p for p in (store / "stamps" / "c").rglob("*") if p.is_file()]
    assert len(shard_files) == -(-len(dataset) // 16)


def test_same_seed_gives_identical_bytes(tmp_path, survey):
    sources, _ = survey
    for name in ("a.zarr", "b.zarr"):
        build_dataset(tmp_path / name, sources, fractions=FRACTIONS, seed=11, chunk_stamps=4, shard_stamps=8)
    build_dataset(tmp_path / "c.zarr", sources, fractions=FRACTIONS, seed=12, chunk_stamps=4, shard_stamps=8)
    first = file_bytes(tmp_path / "a.zarr")
    assert len(first) > 20 and first == file_bytes(tmp_path / "b.zarr")
    ids = {name: open_dataset(tmp_path / name).meta["candidate_id"] for name in ("a.zarr", "c.zarr")}
    assert not np.array_equal(ids["a.zarr"], ids["c.zarr"])


def test_injected_kind_in_training_visit_raises(tmp_path):
    sources, _ = make_survey(tmp_path / "inputs")
    table = Table.read(sources[0].labels, format="ascii.ecsv")
    table["kind"] = np.where(np.arange(len(table)) == 0, "injected_sn", table["kind"])
    table.write(sources[0].labels, format="ascii.ecsv", overwrite=True)
    with pytest.raises(ValueError, match="injected_.*must never reach training"):
        build_dataset(tmp_path / "data.zarr", sources, fractions=FRACTIONS, seed=3)
    assert not (tmp_path / "data.zarr").exists()


def test_label_id_missing_from_shard_names_label_file(tmp_path):
    sources, _ = make_survey(tmp_path / "inputs")
    table = Table.read(sources[2].labels, format="ascii.ecsv")
    table["candidate_id"] = np.where(np.arange(len(table)) == 0, "nowhere-00000", table["candidate_id"])
    table.write(sources[2].labels, format="ascii.ecsv", overwrite=True)
    with pytest.raises(BadInputError, match="labels.ecsv: 1 candidate_id.*not in the shard") as error:
        build_dataset(tmp_path / "data.zarr", sources, fractions=FRACTIONS, seed=3)
    assert error.value.source == str(sources[2].labels)


def test_shards_disagreeing_on_stamp_size_name_the_shard(tmp_path, survey):
    sources, _ = survey
    odd_sources, _ = make_survey(tmp_path / "odd", size=SIZE + 2)
    mixed = [*sources[:3], odd_sources[3]]
    with pytest.raises(BadInputError, match="stamp size") as error:
        build_dataset(tmp_path / "data.zarr", mixed, fractions=FRACTIONS, seed=3)
    assert error.value.source == str(odd_sources[3].shard)


def test_a_visit_with_nonfinite_stamps_is_left_out_naming_it(tmp_path, caplog):
    sources, _ = make_survey(tmp_path / "inputs")
    bad = sources[1]
    shard = read_shard(bad.shard)
    stamps = shard.stamps.copy()
    stamps[3, 0, 0, 2], stamps[5, 1, 1, 0] = np.inf, np.nan
    write_shard(bad.shard, stamps, shard.channels, shard.meta, shard.attrs)
    with caplog.at_level(logging.ERROR, logger="bayesrb"):
        summary = build_dataset(tmp_path / "data.zarr", sources, fractions=FRACTIONS, seed=3)
    reason = f"{bad.shard}: 2 stamp(s) hold NaN or inf pixels, e.g. row(s) [3, 5]"
    assert summary["excluded_visits"] == {bad.visit: reason}
    assert f"visit {bad.visit} left out of the data set: {reason}" in caplog.text
    meta = open_dataset(tmp_path / "data.zarr").meta
    assert bad.visit not in set(meta["visit"]) and {s.visit for s in sources} - {bad.visit} <= set(meta["visit"])
    assert np.isfinite(open_dataset(tmp_path / "data.zarr").stamps[:]).all()


def test_truth_tables_become_columns_and_must_list_the_shard(tmp_path):
    sources, _ = make_survey(tmp_path / "inputs")
    for source in sources:
        ids = read_shard(source.shard).meta["candidate_id"]
        source.truth = tmp_path / f"{source.visit}-truth.ecsv"
        Table({"candidate_id": ids, "truth_separation_px": np.arange(len(ids), dtype=float)}).write(source.truth)
    build_dataset(tmp_path / "data.zarr", sources, fractions=FRACTIONS, seed=3)
    meta = open_dataset(tmp_path / "data.zarr").meta
    shard_rows = meta["label_source"] != "augment"
    expected = [float(cid.rsplit("-", 1)[1]) for cid in meta["candidate_id"][shard_rows]]
    np.testing.assert_array_equal(meta["truth_separation_px"][shard_rows], expected)
    assert np.isnan(meta["truth_separation_px"][~shard_rows]).all()
    Table({"candidate_id": ["elsewhere"], "truth_separation_px": [0.0]}).write(sources[2].truth, overwrite=True)
    with pytest.raises(BadInputError, match="does not list the candidates of the shard") as error:
        build_dataset(tmp_path / "again.zarr", sources, fractions=FRACTIONS, seed=3)
    assert error.value.source == str(sources[2].truth)


def test_open_dataset_rejects_missing_or_invalid_store(tmp_path, survey):
    with pytest.raises(BadInputError, match="does not exist"):
        open_dataset(tmp_path / "absent.zarr")
    with pytest.raises(BadInputError, match="not a data set"):
        open_dataset(survey[0][0].shard)  # a stamp shard is not a data set


# ----------------------------------------------------------------------------------------------- human labels


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_human_labels_take_precedence(tmp_path, survey, caplog):
    sources, _ = survey
    csv = write_csv(tmp_path / "human.csv", "candidate_id,label,kind\n"
                    "F1v0-00000,bogus,\n"      # automatic mp (real): conflict
                    "F1v0-00001,0,\n"          # automatic randjunk (bogus): agrees
                    "F1v0-00003,real,\n"       # unlabelled: newly labelled, kind "human"
                    "F2v1-00007,1,variable\n"  # unlabelled, kind given
                    "E1v0-00000,0,\n"          # evaluation field: human labels apply there too
                    "ghost-1,1,\nghost-2,0,\n")
    with caplog.at_level(logging.WARNING, logger="bayesrb"):
        summary = build_dataset(tmp_path / "data.zarr", sources, fractions=FRACTIONS, seed=3, human_labels=csv)
    assert summary["human_labels"] == {"n_human": 7, "applied": 5, "conflicts": 2, "newly_labelled": 2,
                                       "unknown": 2, "unknown_examples": ["ghost-1", "ghost-2"]}
    assert "2 human-labelled candidate id(s)" in caplog.text and "ghost-1" in caplog.text
    assert "2 human label(s) disagree with the automatic label" in caplog.text
    meta = open_dataset(tmp_path / "data.zarr").meta
    row = {cid: i for i, cid in enumerate(meta["candidate_id"])}
    expected = {"F1v0-00000": (0, "mp"), "F1v0-00001": (0, "randjunk"), "F1v0-00003": (1, "human"),
                "F2v1-00007": (1, "variable"), "E1v0-00000": (0, "mp")}
    for cid, (label, kind) in expected.items():
        assert (meta["label"][row[cid]], meta["kind"][row[cid]], meta["label_source"][row[cid]]) == (
            label, kind, "human"), cid
    assert np.sum(meta["label_source"] == "human") == 5


def test_apply_human_labels_in_place():
    meta = {"candidate_id": np.array(["a", "b", "c"]), "label": np.array([1, -1, 0], np.int8),
            "kind": np.array(["mp", "", "randjunk"]), "label_source": np.array(["auto", "", "auto"])}
    human = Table({"candidate_id": ["b", "c"], "label": np.array([0, 0], np.int8), "kind": ["", "satellite"]})
    summary = apply_human_labels([meta], human)
    assert (summary["applied"], summary["conflicts"], summary["newly_labelled"], summary["unknown"]) == (2, 0, 1, 0)
    assert meta["label"].tolist() == [1, 0, 0]
    assert meta["kind"].tolist() == ["mp", "human", "satellite"]
    assert meta["label_source"].tolist() == ["auto", "human", "human"]


@pytest.mark.parametrize(("text", "message"), [
    ("candidate_id,kind\na,mp\n", r"lacks column\(s\) \['label'\]"),
    ("candidate_id,label\na,1\nb,maybe\nc,2\n", "bad value.*line 3: 'maybe', line 4: '2'"),
    ("candidate_id,label\na,1\nb,0\na,1\n", r"1 duplicate candidate_id\(s\): 'a' \(lines 2 and 4\)"),
    ("candidate_id,label\n,1\n", r"empty candidate_id at line\(s\) 2"),
])
def test_malformed_human_csv(tmp_path, text, message):
    path = write_csv(tmp_path / "human.csv", text)
    with pytest.raises(BadInputError, match=message) as error:
        read_human_labels(path)
    assert error.value.source == str(path)


def test_human_csv_missing_and_valid(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        read_human_labels(tmp_path / "absent.csv")
    table = read_human_labels(write_csv(tmp_path / "h.csv", "label,candidate_id\nREAL,x\n bogus ,y\n"))
    assert table["candidate_id"].tolist() == ["x", "y"]
    assert table["label"].tolist() == [1, 0] and table["kind"].tolist() == ["", ""]


# ----------------------------------------------------------------------------------------------- purity


def test_label_purity_on_known_case():
    kind = ["mp"] * 10 + ["randjunk"] * 5 + ["syntransient"] * 3 + ["injected_sn"] * 2 + ["mp"]
    label = [1] * 10 + [0] * 5 + [1] * 3 + [1] * 2 + [0]
    truth = ["mp"] * 9 + ["hot_pixel"] + ["", "cosmic_ray", "bright_star", "satellite", "sn"] + [""] * 5 + ["mp"]
    source = ["auto"] * 20 + ["human"]
    report = label_purity({"kind": np.array(kind), "label": np.array(label), "truth_kind": np.array(truth),
                           "label_source": np.array(source)})
    assert report["kinds"]["mp"] == {"n": 10, "n_agree": 9, "purity": 0.9, "impurities": {"hot_pixel": 1}}
    assert report["kinds"]["randjunk"] == {"n": 5, "n_agree": 4, "purity": 0.8, "impurities": {"sn": 1}}
    assert report["classes"]["real"]["purity"] == 0.9 and report["classes"]["bogus"]["purity"] == 0.8
    assert report["excluded"] == {"synthetic": {"syntransient": 3}, "truth-labelled": {"injected_sn": 2},
                                  "human": {"mp": 1}, "other": {}}
    text = format_purity(report)
    assert "kind mp" in text and "0.900" in text and "hot_pixel: 1" in text and "injected_sn: 2" in text


def test_label_purity_needs_truth():
    with pytest.raises(ValueError, match="truth_kind"):
        label_purity({"kind": np.array(["mp"]), "label": np.array([1])})


def test_cli_prints_purity_of_store(built, tmp_path, capsys):
    dataset, _, _, store = built
    assert main(["purity", str(store)]) == 0
    out = capsys.readouterr().out
    # every visit has one minor-planet label on a hot pixel (candidate 4) and one junk label on an AGN (candidate 1)
    training_part, _, evaluation_part = out.partition("Evaluation-only fields")
    for part, fields in ((training_part, dataset.meta["split"] != "eval"),
                         (evaluation_part, dataset.meta["split"] == "eval")):
        visits = sorted(set(dataset.meta["visit"][fields].tolist()))
        n_mp = int(np.sum((dataset.meta["kind"] == "mp") & fields))
        mp_line = next(line for line in part.splitlines() if line.startswith("kind mp"))
        assert mp_line.split()[2:5] == [str(n_mp), str(n_mp - len(visits)), f"{1 - len(visits) / n_mp:.3f}"]
        assert f"hot_pixel: {len(visits)}" in mp_line
        assert "agn: " in next(line for line in part.splitlines() if line.startswith("kind randjunk"))
    assert main(["purity", str(tmp_path / "absent.zarr")]) == 1
    assert "does not exist" in capsys.readouterr().err
