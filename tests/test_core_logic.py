"""Fast tests of the core rules, each against an independent restatement: the output-folder guard and its lock,
checkpoint choice, fingerprints, the held-out split's clustering, the MinHash settings, the learning-rate schedule
and the KD losses. Values are chosen so that no two parameters coincide (a swapped argument changes the result).
These are the tests `make mutation` runs against the mutants of those modules."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

import pytest
import torch

from safe_output import MARKER, UserError, claim_output, output_lock
from safe_output.folder import LOCK, owner_of, remove_leftovers, replace_own, reuse_or_replace, use_output


# ------------------------------------------------------------------------------------- output-folder guard
def test_claim_marks_a_new_or_empty_folder_and_refuses_the_rest(tmp_path):
    new, empty = tmp_path / "a" / "new", tmp_path / "empty"
    empty.mkdir()
    assert claim_output(new, "cmd one") is False and claim_output(empty, "cmd one") is False
    assert owner_of(new) == "cmd one" == json.loads((empty / MARKER).read_text())["command"]
    assert claim_output(new, "cmd one") is True  # a re-run
    with pytest.raises(
        UserError,
        match=r"--save .*new: holds the output of `cmd one`, not of `cmd two`; "
        r"choose another --save",
    ):
        claim_output(new, "cmd two", option="--save")
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    with pytest.raises(UserError, match="is a file; give a folder path"):
        claim_output(a_file, "cmd one")
    with pytest.raises(UserError) as e:
        claim_output(tmp_path, "cmd one")  # holds the user's file
    assert str(e.value) == (
        f"--output {tmp_path}: is not empty and was not made by `cmd one`; nothing was written there: "
        "choose a new or empty folder"
    )
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / MARKER).write_text("not json")
    assert owner_of(tmp_path / "bad") is None and owner_of(tmp_path / "nowhere") is None
    (tmp_path / "nokey").mkdir()
    (tmp_path / "nokey" / MARKER).write_text('{"other": 1}')
    assert owner_of(tmp_path / "nokey") is None


def test_replace_own_empties_only_its_own_folder_and_keeps_mark_and_lock(tmp_path):
    out = tmp_path / "out"
    claim_output(out, "cmd")
    (out / LOCK).write_text("")
    (out / "sub").mkdir()
    (out / "sub" / "f").write_text("x")
    (out / "g").write_text("y")
    assert reuse_or_replace(out, "cmd", same=True, overwrite=False) is True
    assert (out / "g").exists()
    with pytest.raises(UserError, match=r"other inputs or settings \(size 1 -> 2\); pass --overwrite"):
        reuse_or_replace(out, "cmd", same=False, overwrite=False, changes="size 1 -> 2")
    assert (out / "g").exists()
    assert reuse_or_replace(out, "cmd", same=False, overwrite=True) is False
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, LOCK])
    other = tmp_path / "other"
    claim_output(other, "another cmd")
    (other / "keep").write_text("z")
    with pytest.raises(UserError, match="was not made by `cmd`"):
        replace_own(other, "cmd")
    assert (other / "keep").exists()


def test_leftovers_are_removed_except_under_another_commands_folder(tmp_path):
    out = tmp_path / "out"
    claim_output(out, "cmd")
    (out / ".x.partial-1").write_text("")
    (out / ".d.old-2").mkdir()
    (out / "deep").mkdir()
    (out / "deep" / ".y.partial-3").write_text("")
    (out / "keep.partial").write_text("")  # not hidden: not a temporary name
    owned = out / "owned"
    claim_output(owned, "other")
    (owned / ".z.partial-4").write_text("")
    remove_leftovers(out)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == sorted(
        [MARKER, "deep", "keep.partial", "owned", f"owned/{MARKER}", "owned/.z.partial-4"]
    )


def test_the_mark_names_the_command_and_the_utc_time_and_messages_name_the_option(tmp_path, monkeypatch):
    import re

    monkeypatch.setenv("TZ", "JST-9")  # local time 9 hours ahead of UTC: the mark must still say UTC
    time.tzset()
    try:
        before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        claim_output(tmp_path / "out", "cmd")
        mark = json.loads((tmp_path / "out" / MARKER).read_text())
        after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    finally:
        monkeypatch.undo()
        time.tzset()
    assert set(mark) == {"command", "created"} and mark["command"] == "cmd"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", mark["created"]) and before <= mark["created"] <= after
    claim_output(tmp_path / "other", "other cmd")
    for call in (
        lambda: claim_output(tmp_path / "other", "cmd"),
        lambda: reuse_or_replace(tmp_path / "out", "cmd", same=False, overwrite=False),
        lambda: replace_own(tmp_path / "other", "cmd"),
    ):
        with pytest.raises(UserError, match="^--output ") as e:  # the option the message names, by default
            call()
    with pytest.raises(UserError) as e:
        reuse_or_replace(tmp_path / "out", "cmd", same=False, overwrite=False)
    assert str(e.value).endswith(
        "made from other inputs or settings; pass --overwrite to replace it, or choose another --output"
    )
    with pytest.raises(UserError, match="^--save .*was not made by `cmd`.*choose another --save$"):
        reuse_or_replace(tmp_path / "other", "cmd", same=False, overwrite=True, option="--save")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(UserError, match=r"^--output .*new: cannot write there \(Permission denied\)"):
            claim_output(locked / "new", "cmd")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a parent folder should be")
    with pytest.raises(
        UserError, match=r"^--output .*blocked/new: cannot write there \(.+\); choose a writable folder$"
    ):
        claim_output(blocked / "new", "cmd")


def test_inputs_inside_the_output_folder_are_refused_and_the_rest_pass(tmp_path, monkeypatch):
    from safe_output.folder import check_inputs_outside

    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (tmp_path / "raw.txt").write_text("x")
    outside = {"--input": [str(tmp_path / "raw.txt"), "", "https://example.org/a", str(tmp_path / "missing")]}
    check_inputs_outside(out, {**outside, "--teacher": None})  # nothing raised: outside, empty, a URL, absent
    check_inputs_outside(out, {"--input": [str(out / "missing")]})  # absent, even inside: not an input to protect
    with pytest.raises(UserError, match=r"^--input .* is inside --output "):  # after inputs passed over
        check_inputs_outside(out, {"--input": ["", "https://example.org/a", str(out / "sub")]})
    (out / "s3:" / "bucket").mkdir(parents=True)
    monkeypatch.chdir(out)  # "" and "s3://bucket" would name folders inside the output, were they paths
    check_inputs_outside(out, {"--input": ["", "s3://bucket"]})
    for inside in (out, out / "sub"):
        with pytest.raises(UserError) as e:
            check_inputs_outside(out, {**outside, "--teacher": [str(inside)]}, option="--run")
        assert str(e.value) == (
            f"--teacher {inside} is inside --run {out}: the run would change or replace what it reads; "
            "give an input outside the output folder, or another --run"
        )


def test_the_free_space_and_the_start_of_a_run_read_from_the_mark(tmp_path):
    import calendar
    import shutil

    from safe_output.folder import _free, _since

    free = _free(tmp_path)
    number = float(free.removesuffix(" MiB").replace(",", ""))
    assert free.endswith(" MiB") and free.count(".") == 1 and len(free.split(".")[1]) == 5  # one decimal
    assert abs(number - shutil.disk_usage(tmp_path).free / 2**20) < 64  # other work may write meanwhile
    assert _free(tmp_path / "missing") == "unknown"
    assert _since({"run_started": 1700000123.5, "created": "2024-01-02T03:04:05Z"}) == 1700000123.5
    assert _since({"run_started": None, "created": "2024-01-02T03:04:05Z"}) == calendar.timegm(
        (2024, 1, 2, 3, 4, 5, 0, 0, 0)
    )  # marked before written files were recorded: files since the folder was made
    assert _since({"created": "2024-01-02T03:04:05Z", "written": []}) is None
    assert _since({"created": "yesterday"}) is None and _since({}) is None


def test_the_mark_records_what_each_run_wrote_and_overwrite_removes_only_that(tmp_path):
    """A run's files are recorded in the mark when it ends; a file a user adds later is foreign: --overwrite
    names it (the first five, then how many more) and removes nothing; without it, --overwrite removes the
    run's files and the folders they leave empty, not what a link points to. A killed run's start time is kept
    by the next run, so the killed run's files stay its own."""
    from safe_output.folder import foreign_files

    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "kept").write_text("not ours")
    with use_output(out, "cmd"):
        assert json.loads((out / MARKER).read_text())["run_started"] == os.stat(out / LOCK).st_mtime
        (out / "sub" / "deep").mkdir(parents=True)
        (out / "sub" / "deep" / "a").write_text("x")
        (out / "b").write_text("y")
        (out / "link").symlink_to(elsewhere)
        assert foreign_files(out) == []  # written during the run
    mark = json.loads((out / MARKER).read_text())
    assert mark["written"] == ["b", "link", "sub/deep/a"] and mark["run_started"] is None
    (out / "sub" / "mine").write_text("the user's")
    assert foreign_files(out) == ["sub/mine"]
    time.sleep(0.05)  # file times tick every few ms: the next run starts on a later tick
    with use_output(out, "cmd"):
        (out / "c").write_text("z")
        assert foreign_files(out) == ["sub/mine"]  # the user's file is older than this run
    assert json.loads((out / MARKER).read_text())["written"] == ["b", "c", "link", "sub/deep/a"]
    for i in range(6):
        (out / f"user{i}").write_text("")
        listed = ", ".join(["sub/mine"] + [f"user{k}" for k in range(min(i + 1, 4))])
        more = f" and {i - 3} more" if i >= 4 else ""  # the first five are named
        with pytest.raises(UserError, match=rf"did not write \({listed}{more}\); nothing was removed"):
            replace_own(out, "cmd")
    assert (out / "b").exists() and (out / "sub" / "deep" / "a").exists()  # nothing removed
    for f in [out / "sub" / "mine"] + [out / f"user{i}" for i in range(6)]:
        f.unlink()
    replace_own(out, "cmd")
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, LOCK])  # sub/deep and sub went with their files
    assert (elsewhere / "kept").read_text() == "not ours"
    assert json.loads((out / MARKER).read_text())["written"] == []
    (out / "same-tick").write_text("")  # a file changed exactly when a run started is the run's own
    mark = json.loads((out / MARKER).read_text())
    (out / MARKER).write_text(json.dumps(mark | {"run_started": os.stat(out / "same-tick").st_ctime}))
    assert foreign_files(out) == []
    (out / MARKER).write_text("[]")  # a mark that is not a record: nothing counts as written
    assert foreign_files(out) == ["same-tick"]
    (out / MARKER).write_text(json.dumps(mark))
    (out / "same-tick").unlink()
    killed = json.loads((out / MARKER).read_text()) | {"run_started": 1.0}  # a run killed long ago
    (out / MARKER).write_text(json.dumps(killed))
    with use_output(out, "cmd"):
        assert json.loads((out / MARKER).read_text())["run_started"] == 1.0


# ------------------------------------------------------------------------------------- the lock
def test_a_held_lock_names_its_holder_and_wait_blocks_until_it_is_released(tmp_path, capsys):
    out = tmp_path / "out"
    claim_output(out, "cmd")
    with output_lock(out, command="the first run"):
        assert "(the first run)" in (out / LOCK).read_text()
        with pytest.raises(UserError, match=r"is in use by pid \d+ on .* \(the first run\); .* pass --wait"):
            with output_lock(out):
                pass
        entered = []

        def second():
            with output_lock(out, wait=True, command="the second run"):
                entered.append((out / LOCK).read_text())

        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.3)
        assert entered == []  # still waiting
    waiter.join(10)
    assert len(entered) == 1 and "(the second run)" in entered[0]
    assert "waiting for pid" in capsys.readouterr().err
    assert (out / LOCK).read_text() == ""  # released: it names no holder


def test_use_output_cleans_leftovers_of_its_own_folder_only(tmp_path):
    out = tmp_path / "out"
    with use_output(out, "cmd") as rerun:
        assert rerun is False
    (out / ".a.partial-1").write_text("")
    with use_output(out, "cmd") as rerun:
        assert rerun is True and not (out / ".a.partial-1").exists()


# ------------------------------------------------------------------------------------- checkpoints
def test_the_newest_checkpoint_is_chosen_and_only_the_newest_kept(tmp_path):
    from train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

    assert latest_checkpoint(tmp_path) is None
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    for step in (9, 10, 110):  # 9 < 10 < 110 only when compared as numbers of the same width
        with torch.no_grad():
            model.weight.fill_(step)
        save_checkpoint(tmp_path, step, model, optimizer, keep=3, extra={"note": step})
    assert latest_checkpoint(tmp_path).name == "step-00000110.pt"
    state = load_checkpoint(latest_checkpoint(tmp_path))
    assert state["step"] == 110 and state["note"] == 110 and state["model"]["weight"][0, 0].item() == 110
    save_checkpoint(tmp_path, 111, model, optimizer, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000110.pt", "step-00000111.pt"]


def test_rng_states_round_trip():
    import random

    import numpy as np

    from train.checkpoint import rng_state, set_rng_state

    torch.manual_seed(3), np.random.seed(4), random.seed(5)
    state = rng_state()
    first = (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)])
    torch.manual_seed(30), np.random.seed(40), random.seed(50)
    set_rng_state(state)
    assert (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]) == first


def test_a_checkpoint_holding_other_objects_is_refused(tmp_path):
    """Loading reads tensors and plain values only: a file that would run code on unpickling is refused."""
    import pickle
    from fractions import Fraction

    from train.checkpoint import load_checkpoint

    torch.save({"step": 3, "w": torch.ones(2)}, tmp_path / "plain.pt")
    loaded = load_checkpoint(tmp_path / "plain.pt")
    assert loaded["step"] == 3 and loaded["w"].tolist() == [1.0, 1.0]
    torch.save({"step": 3, "other": Fraction(1, 3)}, tmp_path / "other.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(tmp_path / "other.pt")


# ------------------------------------------------------------------------------------- fingerprints
def test_fingerprints_follow_content_not_order_or_paths(tmp_path):
    from train.fingerprint import (
        clean_fingerprint,
        describe_change,
        files_fingerprint,
        fingerprint,
        model_fingerprint,
        short,
        tokens_fingerprint,
    )

    a = fingerprint({"x": 1, "y": [1, 2]})
    assert a == fingerprint({"y": [1, 2], "x": 1}) and len(a) == 16 and int(a, 16) >= 0
    assert a != fingerprint({"x": 1, "y": [2, 1]}) and a != fingerprint({"x": 1.5, "y": [1, 2]})
    assert fingerprint("é") != fingerprint("e") and short(a) == a[:10]
    assert fingerprint({"p": Path("a/b")}) == fingerprint({"p": "a/b"})  # a value JSON lacks counts as its text
    # fixed values: a fingerprint recorded by an earlier run still names the same unit
    assert fingerprint({"naïve": ["café", 2]}) == "536b3215bfcd9d99"

    for name in ("one", "two"):
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "sub" / "f.txt").write_text("same")
    one, two = tmp_path / "one", tmp_path / "two"
    assert files_fingerprint([one]) != files_fingerprint([two])  # the input's own name counts
    before = files_fingerprint([one])
    (one / "sub" / "f.txt").write_text("changed")
    assert files_fingerprint([one]) != before
    (one / "sub" / "f.txt").write_text("same")
    (one / "sub" / "f.txt").rename(one / "sub" / "g.txt")
    assert files_fingerprint([one]) != before  # the relative path counts
    assert files_fingerprint([one / "sub" / "g.txt"]) != files_fingerprint([two / "sub" / "f.txt"])
    assert files_fingerprint([one / "sub" / "g.txt"]) == "b192a3e2ac281cd1"  # fixed, as above
    assert files_fingerprint([one]) == "e27d6ef973de3a12"

    clean = tmp_path / "clean"
    (clean / "shards").mkdir(parents=True)
    (clean / "shards" / "a.arrow").write_bytes(b"abc")
    (clean / "manifest.json").write_text(json.dumps({"rows": 1}))
    hashed = clean_fingerprint(clean)
    (clean / "shards" / "a.arrow").write_bytes(b"abd")
    assert clean_fingerprint(clean) != hashed
    (clean / "manifest.json").write_text(json.dumps({"shards": [{"path": "shards/a.arrow", "sha256": "1"}]}))
    recorded = clean_fingerprint(clean)
    (clean / "shards" / "a.arrow").write_bytes(b"other")  # the manifest's hashes stand for the shards
    assert clean_fingerprint(clean) == recorded
    (clean / "manifest.json").write_text(json.dumps({"shards": [{"path": "shards/a.arrow", "sha256": "2"}]}))
    assert clean_fingerprint(clean) != recorded

    tokens = tmp_path / "tokens"
    tokens.mkdir()
    manifest = {"source_sha256": "s", "fingerprint": "f", "block_size": 32, "val_fraction": 0.1, "splits": {}}
    (tokens / "manifest.json").write_text(json.dumps({**manifest, "content_fingerprint": "c0ffee"}))
    assert tokens_fingerprint(tokens) == "c0ffee"

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"w")
    hashed = model_fingerprint(model)
    for name in ("model.safetensors", "config.json", "tokenizer.json", "pytorch_model.bin", "vocab.json", "merges.txt"):
        (model / name).write_bytes(b"v")
        assert model_fingerprint(model) != hashed, name
        hashed = model_fingerprint(model)
    (model / "provenance.json").write_text(json.dumps({"fingerprint": "run-fp"}))
    assert model_fingerprint(model) == "run-fp"

    assert (
        describe_change({"a": "1234567890abc", "b": "x"}, {"a": "1234567890abd", "b": "x", "c": "y"})
        == "a 1234567890 -> 1234567890, c None -> y"
    )


# ------------------------------------------------------------------------------------- the held-out split
def components(n: int, pairs: list[tuple[int, int]]) -> list[set[int]]:
    """Connected components by graph search (the reference for the union-find)."""
    links = {i: set() for i in range(n)}
    for a, b in pairs:
        links[a].add(b)
        links[b].add(a)
    seen, found = set(), []
    for start in range(n):
        if start in seen:
            continue
        group, todo = set(), [start]
        while todo:
            i = todo.pop()
            if i not in group:
                group.add(i)
                todo.extend(links[i] - group)
        seen |= group
        found.append(group)
    return found


def test_clusters_are_the_connected_components_of_the_pairs():
    from train.split import NearDuplicates, cluster_split, clusters, leakage

    # chains whose links arrive in every order: 0~3, 3~1 (0 and 1 linked only through 3), 4~2, 2~5, 5~1, 6 alone
    pairs = [(3, 1), (4, 2), (0, 3), (5, 1), (2, 5), (7, 8)]
    found = NearDuplicates([f"id{i}" for i in range(9)], pairs, 0.0)
    roots = clusters(found)
    groups = {}
    for i, r in enumerate(roots):
        groups.setdefault(r, set()).add(i)
    assert sorted(map(sorted, groups.values())) == sorted(map(sorted, components(9, pairs)))
    assert all(r == min(groups[r]) for r in groups)  # a cluster is named by its first member
    for fraction in (0.05, 0.3, 0.55, 0.8):
        split = cluster_split(found, fraction)
        assert leakage(found, split)["leaked_docs"] == 0
        for group in groups.values():
            smallest = min(found.ids[i] for i in group)
            assert {split[found.ids[i]] for i in group} == {split[smallest]}


def test_a_cluster_is_held_out_by_the_hash_of_its_smallest_id():
    from train.split import NearDuplicates, cluster_split, is_validation

    ids = [f"doc-{i:03d}" for i in range(200)]
    # each pair: the later id first, so the cluster's first member is not its smallest id
    found = NearDuplicates(ids, [(i + 1, i) for i in range(0, 200, 2)], 0.0)
    found.ids = [ids[i + 1] if i % 2 == 0 else ids[i - 1] for i in range(200)]
    split = cluster_split(found, 0.37)
    for i in range(0, 200, 2):
        pair = found.ids[i], found.ids[i + 1]
        assert split[pair[0]] == split[pair[1]] == is_validation(min(pair), 0.37)
    assert 0 < sum(split.values()) < 200


def test_leakage_counts_validation_documents_with_a_training_duplicate():
    from train.split import NearDuplicates, id_hash_split, is_validation, leakage

    found = NearDuplicates(["a", "b", "c", "d", "e"], [(0, 1), (0, 2), (3, 4)], 0.0)
    held = {"a": True, "b": False, "c": False, "d": True, "e": True}
    assert leakage(found, held) == {"val_docs": 3, "leaked_docs": 1, "leaked_fraction": 1 / 3}
    held = {"a": False, "b": True, "c": True, "d": False, "e": False}
    assert leakage(found, held) == {"val_docs": 2, "leaked_docs": 2, "leaked_fraction": 1.0}
    assert leakage(found, dict.fromkeys(held, False)) == {"val_docs": 0, "leaked_docs": 0, "leaked_fraction": 0.0}
    assert id_hash_split(found, 0.45) == {k: is_validation(k, 0.45) for k in "abcde"}


def test_is_validation_is_the_sha1_bucket():
    import hashlib

    from train.split import is_validation

    for key in ("a", "doc-17", "ü", "x" * 50):
        bucket = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "little") % 1_000_000
        for fraction in (0.0, 0.013, 0.5, 1.0):
            assert is_validation(key, fraction) == (bucket < fraction * 1_000_000)
    keys = [f"k{i}" for i in range(4000)]
    assert 0.27 < sum(is_validation(k, 0.3) for k in keys) / 4000 < 0.33
    # at the edge: a fraction of exactly bucket / 10^6 leaves the key out, the next millionth takes it in
    for key, bucket in (("doc-17", 800622), ("k7", 296178)):
        assert not is_validation(key, bucket / 1_000_000) and is_validation(key, (bucket + 1) / 1_000_000)


def test_near_duplicates_are_5_gram_jaccard_of_lowercased_words():
    import xxhash

    from train.split import NUM_PERM, find_near_duplicates, jaccard, shingle_hashes

    words = [f"w{i}" for i in range(100)]
    base = " ".join(words)
    assert len(shingle_hashes(base)) == 96 and len(shingle_hashes("one two three")) == 1
    assert len(shingle_hashes("")) == 0
    # the hashes are xxh64 of the lowercased words of a 5-gram joined by one space (the whole text when shorter)
    assert list(shingle_hashes("The Quick brown fox,  jumps OVER")) == sorted(
        {xxhash.xxh64_intdigest("the quick brown fox jumps"), xxhash.xxh64_intdigest("quick brown fox jumps over")}
    )
    assert list(shingle_hashes("Hello, World")) == [xxhash.xxh64_intdigest("hello world")]
    assert list(shingle_hashes(base.upper().replace(" ", ", "))) == list(shingle_hashes(base))
    one_edit = " ".join(words[:50] + ["new"] + words[51:])  # 5 shingles replaced: 91 / 101
    assert jaccard(shingle_hashes(base), shingle_hashes(one_edit)) == pytest.approx(91 / 101)
    assert jaccard(shingle_hashes(base), shingle_hashes("")) == 0.0
    four = " ".join(w if i not in (10, 30, 50, 70) else "x" for i, w in enumerate(words))  # 76 / 116 < 0.8
    three = " ".join(w if i not in (10, 30, 50) else "x" for i, w in enumerate(words))  # 81 / 111 < 0.8
    two = " ".join(w if i not in (10, 50) else "x" for i, w in enumerate(words))  # 86 / 106 >= 0.8
    docs = [("base", base), ("empty", ""), ("two", two), ("three", three), ("four", four)]
    found = find_near_duplicates(docs)
    assert find_near_duplicates(iter(docs), workers=2) == found  # hashed by two worker processes: the same result
    assert found.ids == ["base", "empty", "two", "three", "four"]
    # base ~ two ~ four with base not ~ four: documents differing in 1 or 2 words pair up, in 3 or 4 they do not
    assert sorted(found.pairs) == [(0, 2), (2, 3), (2, 4), (3, 4)]
    assert 0 < found.miss_probability < 0.01 and NUM_PERM == 128
    # exactly at the threshold: 4 shared 5-grams of 5 in all (a 9-word text and its first 8 words)
    nine = " ".join(words[20:29])
    assert jaccard(shingle_hashes(nine), shingle_hashes(" ".join(words[20:28]))) == 0.8
    docs = [("nine", nine), ("eight", " ".join(words[20:28])), ("seven", " ".join(words[20:27]))]
    assert find_near_duplicates(docs).pairs == [(0, 1)]  # 4/5 pairs up; 3/4 and 3/5 do not


# ------------------------------------------------------------------------------------- MinHash settings
def test_minhash_settings_reach_datatrove_s_config():
    from corpus.dedup import MinHashSettings, minhash_config

    defaults = MinHashSettings(n_grams=5, num_buckets=14, hashes_per_bucket=8, seed=1, hash_precision=64)
    assert MinHashSettings() == defaults
    c = minhash_config(MinHashSettings(n_grams=4, num_buckets=9, hashes_per_bucket=6, seed=11, hash_precision=32))
    assert (c.n_grams, c.num_buckets, c.hashes_per_bucket, c.seed, c.hash_config.precision) == (4, 9, 6, 11, 32)


# ------------------------------------------------------------------------------------- learning-rate schedule
def schedule(step: int, peak: float, warmup: int, floor_ratio: float, steps: int) -> float:
    """Linear warmup to `peak` over `warmup` steps (step 0 already at peak / warmup), then a half cosine from
    peak to peak * floor_ratio at the last step."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / (steps - warmup)
    return peak * floor_ratio + (peak - peak * floor_ratio) * (math.cos(math.pi * t) + 1) / 2


def test_learning_rate_formula_at_chosen_steps():
    from train.config import RunConfig
    from train.loop import lr_at, total_steps

    cfg = RunConfig()
    cfg.optim.lr, cfg.optim.warmup, cfg.optim.min_lr_ratio = 3e-3, 4, 0.15
    steps = 17
    for step in (0, 1, 3, 4, 5, 10, 16, 17, 40):
        expected = schedule(min(step, steps), 3e-3, 4, 0.15, steps)
        assert lr_at(step, cfg, steps) == pytest.approx(expected, rel=1e-12), step
    assert lr_at(steps, cfg, steps) == pytest.approx(3e-3 * 0.15) and lr_at(3, cfg, steps) == pytest.approx(3e-3)
    assert [lr_at(step, cfg, 5) for step in (3, 4, 5)] == pytest.approx([3e-3, 3e-3, 3e-3 * 0.15])  # one decay step
    cfg.optim.warmup = 0
    assert lr_at(0, cfg, 9) == pytest.approx(3e-3)
    cfg.optim.batch_size, cfg.optim.grad_accum, cfg.optim.max_tokens, cfg.optim.max_steps = 3, 5, 1000, 7
    assert total_steps(cfg, 2, 11) == math.ceil(1000 / (3 * 5 * 2 * 11)) == 4
    assert total_steps(cfg, 2, 1000) == 1
    cfg.optim.max_tokens = 0
    assert total_steps(cfg, 2, 11) == 7


# ------------------------------------------------------------------------------------- KD losses
def softmax(row: list[float], t: float = 1.0) -> list[float]:
    e = [math.exp(v / t) for v in row]
    return [v / sum(e) for v in e]


def kl_direct(student: list[list[float]], teacher: list[list[float]], t: float) -> float:
    """KL(teacher/T || student/T) * T^2, averaged over rows."""
    return (
        sum(
            sum(p * math.log(p / q) for p, q in zip(softmax(tr, t), softmax(sr, t), strict=True))
            for sr, tr in zip(student, teacher, strict=True)
        )
        / len(student)
        * t
        * t
    )


def test_kd_losses_weigh_their_terms_as_configured():
    from eval import EvalError, kd
    from eval.glue import Classifier, GlueConfig
    from train.model import GPT, GPTConfig

    s, t, labels = [[1.0, -0.5, 2.0], [0.3, 0.9, -1.2]], [[2.5, 0.0, -1.0], [-0.4, 1.1, 0.2]], [2, 0]
    ce = -sum(math.log(softmax(r)[y]) for r, y in zip(s, labels, strict=True)) / 2
    alpha, temp = 0.35, 2.5  # 1 - alpha != alpha, T != 2
    got = kd.KDLoss(GlueConfig(kd="vanilla", kd_alpha=alpha, kd_temperature=temp))(
        torch.tensor(s), torch.tensor(labels), None, torch.tensor(t), None, None
    )
    assert got.item() == pytest.approx((1 - alpha) * ce + alpha * kl_direct(s, t, temp), rel=1e-6)
    assert kd.kl_distill(torch.tensor(s), torch.tensor(t), 1.7).item() == pytest.approx(kl_direct(s, t, 1.7), rel=1e-6)

    torch.manual_seed(0)
    student = Classifier(GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=3, n_head=2, n_embd=8)), 3)
    teacher = Classifier(GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=5, n_head=2, n_embd=12)), 3)
    cfg = GlueConfig(kd="rail", rail_dim=4, rail_weight=0.45, kd_alpha=0.2, kd_temperature=1.5)  # 0.45 != 1 - 0.2
    loss = kd.KDLoss(cfg, student, teacher)
    loss.start_epoch(2)
    assert loss.layers == kd.rail_layers(2, cfg.seed, 5, 3)
    hidden, t_hidden = [torch.randn(2, 3, 8) for _ in range(4)], [torch.randn(2, 3, 12) for _ in range(6)]
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    rail = loss.rail_term(hidden, t_hidden, mask).item()
    assert 0 < rail < 4
    got = loss(torch.tensor(s), torch.tensor(labels), hidden, torch.tensor(t), t_hidden, mask).item()
    assert got == pytest.approx(0.8 * ce + 0.2 * kl_direct(s, t, 1.5) + 0.45 * rail, rel=1e-6)

    small = Classifier(GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=2, n_embd=8)), 3)
    with pytest.raises(EvalError, match="at least 2 layers"):
        kd.KDLoss(cfg, small, teacher)
    with pytest.raises(EvalError, match="at least as many layers"):
        kd.KDLoss(cfg, teacher, student)
    with pytest.raises(EvalError, match="unknown KD technique 'fitnets'"):
        kd.KDLoss(GlueConfig(kd="fitnets"))


def test_kd_plans_and_rail_settings_at_their_edges():
    from eval import EvalError, kd
    from eval.glue import Classifier, GlueConfig
    from train.model import GPT, GPTConfig

    assert kd.annealing_plan(epochs=9, phase2_epochs=2, steps_per_epoch=3, tau_max=7) == {
        "phase1_epochs": 7,
        "phase2_epochs": 2,
        "phase1_steps": 21,
        "tau_max": 7,
        "slice_ends": [3, 6, 9, 12, 15, 18, 21],
        "fit": "one temperature per epoch, as in the paper",
    }
    # phase 1 exactly as many steps as temperatures: one step each
    plan = kd.annealing_plan(epochs=3, phase2_epochs=1, steps_per_epoch=3, tau_max=6)
    assert plan["phase1_steps"] == 6 and plan["slice_ends"] == [1, 2, 3, 4, 5, 6]
    assert plan["fit"] == (
        "2 phase-1 epoch(s) for 6 temperatures: each temperature gets an equal slice of 1.0 steps "
        "(the paper gives each an epoch)"
    )
    with pytest.raises(EvalError) as error:
        kd.annealing_plan(epochs=2, phase2_epochs=1, steps_per_epoch=4, tau_max=5)
    assert str(error.value) == (
        "Annealing-KD: phase 1 has 4 steps, fewer than the 5 temperatures: "
        "raise --epochs or --max-train, or lower --annealing-tau-max"
    )
    with pytest.raises(EvalError) as error:
        kd.KDLoss(GlueConfig(kd="fitnets"))
    assert str(error.value) == "unknown KD technique 'fitnets': choose none, vanilla, annealing, rail"
    s, t, labels = [[1.0, -0.5], [0.3, 2.0]], [[3.5, -2.0], [-1.4, 4.0]], [1, 0]
    ce = -sum(math.log(softmax(r)[y]) for r, y in zip(s, labels, strict=True)) / 2
    fresh = kd.KDLoss(GlueConfig(kd="annealing", annealing_tau_max=4))  # no temperature set: the labels only
    assert fresh(torch.tensor(s), torch.tensor(labels), None, torch.tensor(t), None, None).item() == pytest.approx(ce)

    # the draws are fixed by (seed, epoch): a rerun and cached results see the same layers
    assert kd.rail_layers(4, seed=5, n_teacher=12, n_student=6) == [1, 3, 7, 8, 10]
    assert kd.rail_layers(9, seed=3, n_teacher=12, n_student=6) == [1, 4, 8, 10, 11]

    def classifier(n_layer: int, n_embd: int) -> Classifier:
        return Classifier(GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=n_layer, n_head=2, n_embd=n_embd)), 3)

    torch.manual_seed(0)
    cfg = GlueConfig(kd="rail", rail_dim=4, rail_weight=0.45, kd_alpha=0.2, kd_temperature=1.5)
    loss = kd.make_loss(cfg, classifier(3, 8), classifier(5, 12))  # one projection per intermediate layer
    assert [(p.in_features, p.out_features, p.bias) for p in loss.student_proj] == [(8, 4, None)] * 2
    assert [(p.in_features, p.out_features, p.bias) for p in loss.teacher_proj] == [(12, 4, None)] * 4
    loss.layers = [2]  # fewer teacher layers than student layers: an error, not a silently dropped pair
    hidden, t_hidden = [torch.randn(2, 3, 8) for _ in range(4)], [torch.randn(2, 3, 12) for _ in range(6)]
    with pytest.raises(ValueError):
        loss.rail_term(hidden, t_hidden, torch.ones(2, 3))
    smallest = kd.KDLoss(cfg, classifier(2, 8), classifier(2, 12))  # 2 layers each: the smallest pair allowed
    smallest.start_epoch(0)
    assert smallest.layers == [1] and len(smallest.student_proj) == len(smallest.teacher_proj) == 1
    with pytest.raises(EvalError) as error:
        kd.KDLoss(cfg, classifier(1, 8), classifier(2, 12))
    assert str(error.value) == "RAIL-KD needs a student with at least 2 layers (one intermediate layer)"
    with pytest.raises(EvalError) as error:
        kd.KDLoss(cfg, classifier(3, 8), classifier(2, 12))
    assert str(error.value) == "RAIL-KD needs a teacher with at least as many layers as the student"


def test_mean_pool_averages_only_real_tokens():
    from eval.kd import mean_pool

    hidden = torch.tensor([[[1.0, 2.0], [3.0, 6.0], [100.0, 100.0]], [[5.0, 7.0], [9.0, 9.0], [9.0, 9.0]]])
    hidden = torch.cat([hidden, torch.tensor([[[4.0, -8.0], [50.0, 50.0], [60.0, 60.0]]])])
    pooled = mean_pool(hidden, torch.tensor([[1, 1, 0], [0, 0, 0], [1, 0, 0]]))
    # each example by its own count of real tokens (2, none, 1)
    assert pooled.tolist() == [[2.0, 4.0], [0.0, 0.0], [4.0, -8.0]]  # no real token: 0, not NaN


def test_distillation_loss_weighs_each_term_by_its_own_alpha():
    from train.distill import DistillConfig, distillation_loss
    from train.model import GPTOutput

    torch.manual_seed(1)
    s_logits, t_logits = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    s_hidden, t_hidden = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    kept = [(b, i) for b in range(2) for i in range(3) if mask[b, i]]
    temp = 1.5
    kl = sum(kl_direct([s_logits[b, i].tolist()], [t_logits[b, i].tolist()], temp) for b, i in kept) / len(kept)
    cos = sum(
        1 - torch.nn.functional.cosine_similarity(s_hidden[b, i], t_hidden[b, i], dim=0).item() for b, i in kept
    ) / len(kept)
    clm = torch.tensor(2.3)
    cfg = DistillConfig(alpha_kl=0.7, alpha_clm=1.9, alpha_cos=3.1, temperature=temp)
    total, parts = distillation_loss(
        GPTOutput(s_logits, clm, (s_hidden,)), GPTOutput(t_logits, None, (t_hidden,)), None, cfg, attention_mask=mask
    )
    assert parts == pytest.approx({"kl": kl, "clm": 2.3, "cos": cos}, rel=1e-5)
    assert total.item() == pytest.approx(0.7 * kl + 1.9 * 2.3 + 3.1 * cos, rel=1e-5)
    message = "^distillation_loss needs the student's CLM loss: call the student with labels=$"
    with pytest.raises(ValueError, match=message):
        distillation_loss(GPTOutput(s_logits, None, (s_hidden,)), GPTOutput(t_logits, None, (t_hidden,)), None, cfg)


def test_the_chunked_kl_and_its_gradient_equal_the_direct_ones_for_any_chunk():
    """The KL term a slice of positions at a time, with its closed-form gradient, against the plain expression and
    autograd: every chunk size (one position, uneven slices, all at once), with and without a mask, and a gradient
    scaled from outside (as a weighted sum of terms does)."""
    from train.distill import kl_term

    torch.manual_seed(2)
    s_logits, t_logits = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    mask = torch.tensor([[1, 1, 0], [1, 0, 1]])
    temp = 1.7
    for m in (None, mask):
        weights = torch.full((6,), 1 / 6) if m is None else m.reshape(-1).float() / m.sum()
        direct_s = s_logits.clone().requires_grad_()
        log_s = torch.log_softmax(direct_s.reshape(6, 5) / temp, -1)
        log_t = torch.log_softmax(t_logits.reshape(6, 5) / temp, -1)
        direct = ((log_t.exp() * (log_t - log_s)).sum(-1) * weights).sum() * temp**2
        (2.5 * direct).backward()
        for chunk in (1, 4, 0):
            student = s_logits.clone().requires_grad_()
            got = kl_term(student, t_logits, temp, m, chunk_tokens=chunk)
            (2.5 * got).backward()
            assert got.item() == pytest.approx(direct.item(), rel=1e-6), (m, chunk)
            assert torch.allclose(student.grad, direct_s.grad, rtol=1e-5, atol=1e-7), (m, chunk)


# ------------------------------------------------------------------------------------- statistics
def test_welch_interval_written_out():
    """Welch's interval restated: standard errors, Welch-Satterthwaite degrees of freedom, t quantile. Unequal
    seed counts (3 and 5) and spreads, so n and n - 1, or a and b, cannot stand in for each other."""
    from scipy import stats as scipy_stats

    from eval.studies.stats import summarize, welch_interval

    a, b = [10.1, 10.9, 10.4], [11.8, 12.9, 12.1, 12.2, 13.0]
    sa, sb = summarize(a), summarize(b)
    assert sa["n"] == 3 and sa["mean"] == pytest.approx(sum(a) / 3) and sa["values"] == a
    assert sa["std"] == pytest.approx(math.sqrt(sum((x - sum(a) / 3) ** 2 for x in a) / 2))
    va, vb = sa["std"] ** 2 / 3, sb["std"] ** 2 / 5
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 4)
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    diff = sum(a) / 3 - sum(b) / 5
    ci = welch_interval(sa, sb)
    assert ci == pytest.approx({"diff": diff, "low": diff - half, "high": diff + half, "df": df}, rel=1e-9)
    assert welch_interval(sb, sa)["diff"] == pytest.approx(-diff)
    assert welch_interval(summarize([1.0]), sb) is None and welch_interval(sb, summarize([2.0])) is None
    assert welch_interval(summarize([2.0, 2.0]), summarize([1.0, 1.0, 1.0])) == {
        "diff": 1.0,
        "low": 1.0,
        "high": 1.0,
        "df": None,
    }
    assert summarize([None, 3.0]) == {"mean": 3.0, "std": 0.0, "n": 1, "values": [3.0]}
    assert summarize([None]) == {"mean": None, "std": None, "n": 0, "values": []}


# ------------------------------------------------------------------------------------- study unit keys
def test_a_study_scale_takes_seeds_budget_and_lr_from_the_flags_and_the_rest_from_the_scale():
    from eval.studies.ablation import SCALES, AblationConfig
    from eval.studies.compare import CompareConfig
    from eval.studies.pretraining import SCALES as SHARED

    default = AblationConfig().scale_of(SCALES)
    # the data study's own default: ten seeds at a lower lr than the shared scale (its seed spread)
    assert (default.seeds, default.lr) == (list(range(10)), 3e-4) and SHARED["default"].lr == 1e-3
    given = AblationConfig(seeds=[7], budget_tokens=4_096, lr=5e-4).scale_of(SCALES)
    assert (given.seeds, given.budget_tokens, given.lr) == ([7], 4_096, 5e-4)
    assert given.blimp_pairs == default.blimp_pairs and given.glue_lr == default.glue_lr == 5e-4
    assert CompareConfig(lr=2e-3).scale_of({"default": SHARED["default"]}).lr == 2e-3


def test_an_evaluation_result_is_keyed_by_every_evaluation_setting(tmp_path, shared_data, monkeypatch):
    from dataclasses import replace

    from eval.studies.pretraining import SCALES, result_key
    from eval.studies.units import cached, unit_path

    monkeypatch.setenv("EVAL_DATA", str(shared_data))
    scale = SCALES["smoke"]
    model, heldout = {"fingerprint": "m1"}, {"content": "h1"}
    base = result_key(model, heldout, scale, seed=3)
    assert result_key(model, heldout, scale, seed=3) == base
    changed = {
        "model": result_key({"fingerprint": "m2"}, heldout, scale, 3),
        "heldout": result_key(model, {"content": "h2"}, scale, 3),
        "no heldout": result_key(model, None, scale, 3),
        "seed": result_key(model, heldout, scale, 4),
    }
    for setting, value in (
        ("wikitext_tokens", 2_001),
        ("heldout_blocks", 17),
        ("glue_train", 65),
        ("glue_epochs", 2),
        ("glue_dev", 63),
        ("glue_lr", 5e-4),
        ("blimp_pairs", 5),
    ):
        changed[setting] = result_key(model, heldout, replace(scale, **{setting: value}), 3)
    paths = {name: unit_path(tmp_path, "eval", key, ".json") for name, key in changed.items()}
    base_path, base_fp = unit_path(tmp_path, "eval", base, ".json")
    for name, (path, fp) in paths.items():
        assert fp != base_fp and path != base_path, name
    assert len({fp for _, fp in paths.values()}) == len(paths)
    # settings of the training run are the model's fingerprint's business, not the evaluation's
    assert result_key(model, heldout, replace(scale, lr=0.5, budget_tokens=1), 3) == base
    assert base_path == tmp_path / f"eval-{base_fp[:10]}.json" and len(base_fp) == 16

    # the key names what it holds (fp32 keys carry no dtype, so results scored before dtypes existed stay valid)
    assert set(base) == {"model", "heldout", "seed", "settings", "data"} and base["seed"] == 3
    assert (base["model"], base["heldout"], changed["no heldout"]["heldout"]) == ("m1", "h1", None)
    assert base["settings"]["glue_epochs"] == scale.glue_epochs and len(base["settings"]) == 7
    assert result_key(model, heldout, scale, 3, dtype="bf16") == {**base, "dtype": "bf16"}
    assert result_key(model, heldout, scale, 3, dtype="fp32") == base

    calls = []
    first = cached(base_path, lambda: calls.append(1) or {"ppl": 12.5})
    again = cached(base_path, lambda: calls.append(1) or {"ppl": 99.0})
    assert first == again == {"ppl": 12.5} == json.loads(base_path.read_text()) and calls == [1]


def test_a_unit_is_found_by_its_settings_and_code_and_a_stale_one_only_when_asked(tmp_path, monkeypatch):
    from eval.studies import units
    from train.fingerprint import file_sha256, fingerprint

    code = tmp_path / "code"  # the project's sources, as the units see them
    for name, text in (("train/split.py", "v1"), ("corpus/a.py", "a"), ("corpus/sub/b.py", "b"), ("corpus/c.txt", "c")):
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        (code / name).write_text(text)
    monkeypatch.setattr(units, "ROOT", code)
    # a file's or a folder's .py files, by path below the project and content
    files = [f"corpus/{n}" for n in ("a.py", "sub/b.py")]
    assert units.source_fingerprint("clean corpus") == fingerprint([[f, file_sha256(code / f)] for f in files])
    v1 = units.source_fingerprint("teacher overlap")
    assert v1 == fingerprint([["train/split.py", file_sha256(code / "train/split.py")]])

    root = tmp_path / "units"
    root.mkdir()
    key = {"lr": 0.25, "seed": 7}
    path, fp, record = units.locate(root, "run", key, "teacher overlap", finished="done")
    assert (path, fp) == units.unit_path(root, "run", {"settings": fingerprint(key), "code": v1})
    assert path.name == f"run-{fp[:10]}" and record == {
        "settings": fingerprint(key),
        "code": v1,
        "kind": "teacher overlap",
        "stale": False,
    }
    path.mkdir()
    assert not units.is_finished(path, "done")  # the folder alone is not a finished unit
    (path / "done").touch()
    units.record_unit(path, fp, record)
    made = {"fingerprint": fp, "settings": fingerprint(key), "code": v1, "kind": "teacher overlap"}
    assert units.record_path(path) == root / f"{path.name}.unit.json"
    assert json.loads(units.record_path(path).read_text()) == made
    units.record_unit(path, "other", record)  # written once
    assert json.loads(units.record_path(path).read_text()) == made
    again = units.locate(root, "run", key, "teacher overlap", finished="done", reuse_stale=True)
    assert again == (path, fp, record)  # this code's finished unit, not a stale one

    (code / "train/split.py").write_text("v2")  # a fix to the code: new units beside the old ones
    v2 = units.source_fingerprint("teacher overlap")
    new_path, new_fp, new_record = units.locate(root, "run", key, "teacher overlap", finished="done")
    assert new_path != path and new_record == {**record, "code": v2} and v2 != v1
    new_path.mkdir()  # this code's unit begun (an interrupted run), not finished: the finished stale one is reused
    stale = units.locate(root, "run", key, "teacher overlap", finished="done", reuse_stale=True)
    assert stale == (path, fp, {**new_record, "stale": True, "made_by_code": v1})
    units.record_unit(*stale)  # a reused stale unit keeps the record of the code that made it
    assert json.loads(units.record_path(path).read_text()) == made and not units.record_path(new_path).exists()
    # other settings, or the old unit unfinished: nothing to reuse
    other = units.locate(root, "run", {**key, "lr": 0.5}, "teacher overlap", finished="done", reuse_stale=True)
    assert other[0] not in (path, new_path) and other[2]["stale"] is False
    (path / "done").unlink()
    unfinished = units.locate(root, "run", key, "teacher overlap", finished="done", reuse_stale=True)
    assert unfinished[:2] == (new_path, new_fp)

    # a unit that is a file: finished when it exists; by default a stale one is not reused
    (code / "train/split.py").write_text("v1")
    result, result_fp, result_record = units.locate(root, "eval", key, "teacher overlap", suffix=".json")
    assert result.name == f"eval-{result_fp[:10]}.json"
    result.write_text("{}")
    units.record_unit(result, result_fp, result_record)
    assert units.is_finished(result)
    (code / "train/split.py").write_text("v3")
    assert units.locate(root, "eval", key, "teacher overlap", suffix=".json")[0] != result
    assert units.locate(root, "eval", key, "teacher overlap", suffix=".json", reuse_stale=True)[0] == result


def test_a_checkpoint_that_cannot_be_written_names_why_and_the_last_good_one(tmp_path, monkeypatch):
    """Faults planted in the write (a full disk, a refused write, a short write): one message with the reason
    and the last good checkpoint, nothing half-written left. Without `keep`, the newest 2 are kept."""
    import errno
    import os

    from train import TrainError
    from train.checkpoint import save_checkpoint

    run = tmp_path / "new" / "run"  # parents are made
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    for step in (1, 2, 3):
        good = save_checkpoint(run, step, model, optimizer)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000002.pt", "step-00000003.pt"]
    for fault, why in (
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "the disk is full"),
        (OSError(errno.EACCES, os.strerror(errno.EACCES)), os.strerror(errno.EACCES)),
        (RuntimeError("short write"), "the write was cut short: is the disk full?"),
    ):

        def failing_save(*args, fault=fault):
            raise fault

        monkeypatch.setattr(torch, "save", failing_save)
        with pytest.raises(TrainError) as e:
            save_checkpoint(run, 4, model, optimizer)
        assert str(e.value) == (
            f"could not write checkpoint {run / 'checkpoints' / 'step-00000004.pt'} ({why}); nothing "
            f"half-written was left, the last good checkpoint is {good}. Free space and run the "
            "same command to resume."
        )
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000002.pt", "step-00000003.pt"]
    with pytest.raises(TrainError, match=r"the last good checkpoint is none\. Free space"):
        save_checkpoint(tmp_path / "fresh", 1, model, optimizer)  # the first checkpoint of a run
