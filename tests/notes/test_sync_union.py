"""aispend sync is a union: a note removed or rewritten upstream (plain or forced push) costs no line.

Real git, a real bare remote, real clones; every note compared byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.gitutil import Person, git, work

REF = "refs/notes/aispend"
WHO = {"GIT_AUTHOR_NAME": "x", "GIT_AUTHOR_EMAIL": "x@example.com", "GIT_COMMITTER_NAME": "x", "GIT_COMMITTER_EMAIL": "x@example.com"}


def raw(path: Path, *args: str, input: bytes | None = None) -> bytes:
    p = subprocess.run(["git", *args], cwd=path, input=input, capture_output=True, check=False)
    assert p.returncode == 0, p.stderr.decode("utf-8", "replace")
    return p.stdout


def blobs(path: Path, ref: str = REF) -> dict[str, bytes]:
    """Annotated object -> the raw bytes of its note (one cat-file for all)."""
    rows = [r.split() for r in git(path, "notes", f"--ref={ref}", "list", check=False).splitlines()]
    if not rows:
        return {}
    out = raw(path, "cat-file", "--batch", input="".join(f"{b}\n" for b, _ in rows).encode())
    content: dict[str, bytes] = {}
    pos = 0
    for blob, obj in rows:
        end = out.index(b"\n", pos)
        size = int(out[pos:end].split()[2])
        content[obj] = out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
    return content


def notes(path: Path, ref: str = REF) -> dict[str, set[bytes]]:
    """Annotated object -> the set of its note's lines (bytes, split on LF only)."""
    return {obj: {x for x in b.split(b"\n") if x} for obj, b in blobs(path, ref).items()}


def sync_out(p: Person) -> str:
    return p.repo.aispend("sync").stdout.strip()


def two_receipts(alice: Person, bob: Person) -> tuple[str, str, dict[str, set[bytes]]]:
    """alice commits two receipts, pushes and syncs; bob fetches and syncs. Her two commits, her notes."""
    a1, a2 = work(alice, 1, minute=10), work(alice, 2, minute=20)
    alice.repo.git("push", "-q", "origin", "main")
    assert sync_out(alice) == "receipts synced with origin: it had none, pushed ours"
    bob.repo.git("fetch", "-q", "origin")
    bob.repo.aispend("sync")
    mine = notes(alice.repo.path)
    assert set(mine) == {a1, a2} and all(len(v) == 1 for v in mine.values())
    assert notes(bob.repo.path) == mine
    return a1, a2, mine


def test_a_note_removed_upstream_is_published_again(alice: Person, bob: Person, remote: Path) -> None:
    a1, a2, mine = two_receipts(alice, bob)
    bob.repo.git("notes", f"--ref={REF}", "remove", a1)
    removal = bob.repo.head(REF)
    bob.repo.git("push", "-q", "origin", f"{REF}:{REF}")  # plain push: a fast-forward
    assert notes(remote) == {a2: mine[a2]}
    out = sync_out(alice)
    assert out == "receipts synced with origin: merged theirs, pushed ours; the remote had lost 1 receipt line: published it again"
    assert notes(alice.repo.path) == notes(remote) == mine
    # Published with a plain push on top of bob's removal, not over it.
    git(remote, "merge-base", "--is-ancestor", removal, REF)  # fails the test unless it is
    # bob gets the line back too; the next sync of either has nothing left to say.
    assert sync_out(bob) == "receipts synced with origin: merged theirs, it had all of ours"
    assert notes(bob.repo.path) == mine
    assert sync_out(alice) == "receipts synced with origin: nothing new from it, it had all of ours"


def test_a_note_rewritten_upstream_keeps_both_lines(alice: Person, bob: Person, remote: Path) -> None:
    a1, a2, mine = two_receipts(alice, bob)
    bob.repo.git("notes", f"--ref={REF}", "add", "-f", "-m", "bob's own line", a1)
    bob.repo.git("push", "-q", "origin", f"{REF}:{REF}")
    assert notes(remote)[a1] == {b"bob's own line"}
    out = sync_out(alice)
    assert out == "receipts synced with origin: merged theirs, pushed ours; the remote had lost 1 receipt line: published it again"
    want = {a1: mine[a1] | {b"bob's own line"}, a2: mine[a2]}
    assert notes(alice.repo.path) == notes(remote) == want
    # The merged note is written as cat_sort_uniq writes it: sorted lines, each once.
    assert blobs(remote)[a1] == b"".join(x + b"\n" for x in sorted(want[a1]))
    bob.repo.aispend("sync")
    assert notes(bob.repo.path) == want


def test_a_forced_push_of_unrelated_notes_keeps_every_line(alice: Person, bob: Person, remote: Path) -> None:
    a1, a2, mine = two_receipts(alice, bob)
    root = bob.repo.head("origin/main~2")
    bob.repo.git("notes", "--ref=refs/notes/other", "add", "-m", "bob's unrelated note", root)
    forced = bob.repo.head("refs/notes/other")
    bob.repo.git("push", "-q", "-f", "origin", f"refs/notes/other:{REF}")
    old = alice.repo.head(REF)
    assert git(remote, "merge-base", old, REF, check=False) == ""  # no common history at all
    assert notes(remote) == {root: {b"bob's unrelated note"}}
    out = sync_out(alice)
    assert out == "receipts synced with origin: merged theirs, pushed ours; the remote had lost 2 receipt lines: published them again"
    want = {**mine, root: {b"bob's unrelated note"}}
    assert notes(alice.repo.path) == notes(remote) == want
    # The union is a merge of both histories: the next plain push from either side fast-forwards.
    parents = git(remote, "rev-list", "--parents", "-1", REF).split()[1:]
    assert sorted(parents) == sorted([old, forced])
    bob.repo.aispend("sync")
    assert notes(bob.repo.path) == want


def test_odd_bytes_survive_the_union_byte_for_byte(alice: Person, bob: Person, remote: Path) -> None:
    a1, a2, mine = two_receipts(alice, bob)
    (receipt,) = mine[a1]
    leading, trailing, latin1 = b"\x1eleading record separator", b"trailing spaces   ", b"caf\xe9 \xff not utf-8"
    crlf = b"  indented, then a CR\r"

    def set_note(p: Person, obj: str, body: bytes) -> None:
        # -C takes the blob as it is: git notes add -m/-F would clean the whitespace.
        blob = raw(p.repo.path, "hash-object", "-w", "--stdin", input=body).decode().strip()
        p.repo.git("notes", f"--ref={REF}", "add", "-f", "-C", blob, obj)

    set_note(alice, a1, receipt + b"\n" + leading + b"\n" + trailing + b"\n")
    set_note(bob, a1, latin1 + b"\n" + receipt + b"\n" + trailing + b"\n")
    only_bob = crlf + b"\n" + latin1 + b"\n\n"  # an empty line too: left as it is in a note nobody merged
    (receipt2,) = mine[a2]
    set_note(bob, a2, receipt2 + b"\n" + receipt2 + b"\n")  # the same line twice: a new blob, no new line
    root = bob.repo.head("origin/main~2")
    set_note(bob, root, only_bob)
    bob.repo.git("push", "-q", "origin", f"{REF}:{REF}")
    assert sync_out(alice) == "receipts synced with origin: merged theirs, pushed ours"
    union = b"".join(x + b"\n" for x in sorted({receipt, leading, trailing, latin1}))
    for where in (alice.repo.path, remote):
        got = blobs(where)
        assert got[a1] == union
        assert got[root] == only_bob  # one side only: its blob, untouched
        assert got[a2] == receipt2 + b"\n"  # a side that holds the whole union keeps its blob


def test_a_note_removed_here_comes_back_from_the_remote(alice: Person, bob: Person, remote: Path) -> None:
    a1, a2, mine = two_receipts(alice, bob)
    alice.repo.git("notes", f"--ref={REF}", "remove", a2)
    assert sync_out(alice) == "receipts synced with origin: merged theirs, pushed ours"
    assert notes(alice.repo.path) == notes(remote) == mine


# `aispend sync -q` that starts its work at the wall-clock time argv[1], once Python and the CLI
# are loaded: two of them then run git at the same moment, not a process start-up apart.
AT_ONCE = """
import sys, time
from aispend.cli import main
start = float(sys.argv.pop(1))
while time.time() < start:
    pass
main()
"""


def _popen_sync(p: Person, start: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", AT_ONCE, str(start), "sync", "-q"], cwd=p.repo.path, env={**os.environ, **p.env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_two_syncs_at_once_in_one_clone(alice: Person, bob: Person, remote: Path) -> None:
    bob.repo.git("switch", "-q", "-c", "b-bob")
    for n in range(2):
        work(bob, n, branch="b-bob", minute=30 + 2 * n)
    bob.repo.aispend("sync")
    want = notes(bob.repo.path)
    # git itself waits up to 100 ms for a ref's lock; without that, a clash shows every time.
    alice.repo.git("config", "core.filesRefLockTimeout", "0")
    for rnd in range(3):  # each round: a new receipt here, then two syncs of this clone at the same moment
        work(alice, rnd, minute=10 + 2 * rnd)
        want.update(notes(alice.repo.path))
        start = time.time() + 0.7
        procs = [_popen_sync(alice, start), _popen_sync(alice, start)]
        for pr in procs:
            out, err = pr.communicate(timeout=120)
            assert pr.returncode == 0, err
            assert out == err == ""
        assert notes(remote) == want
    assert len(want) == 5
    assert notes(alice.repo.path) == want


def _unlock_later(lock: Path, after: float) -> threading.Thread:
    t = threading.Thread(target=lambda: (time.sleep(after), lock.unlink()))
    t.start()
    return t


def test_a_locked_tracking_ref_is_waited_for(alice: Person, bob: Person, remote: Path) -> None:
    work(bob, 1, minute=10)
    bob.repo.aispend("sync")
    work(alice, 1, minute=20)
    lock = alice.repo.path / ".git" / "refs" / "notes" / "remotes" / "origin" / "aispend.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")  # as another git fetch of this clone would hold it
    t = _unlock_later(lock, 1.2)
    assert sync_out(alice) == "receipts synced with origin: merged theirs, pushed ours"
    t.join()
    assert len(notes(remote)) == 2 and notes(alice.repo.path) == notes(remote)


def test_a_locked_notes_ref_is_waited_for(alice: Person, bob: Person, remote: Path) -> None:
    work(bob, 1, minute=10)
    bob.repo.aispend("sync")
    work(alice, 1, minute=20)
    lock = alice.repo.path / ".git" / "refs" / "notes" / "aispend.lock"
    lock.write_text("")  # as a hook appending a receipt would hold it
    t = _unlock_later(lock, 2.0)
    assert sync_out(alice) == "receipts synced with origin: merged theirs, pushed ours"
    t.join()
    assert len(notes(remote)) == 2 and notes(alice.repo.path) == notes(remote)


def _fast_import(p: Person, stream: str) -> None:
    p.repo.git("fast-import", "--quiet", input=stream)


def _notes_commit(ref_from: str | None, notes_by_obj: dict[str, str]) -> str:
    rows = [f"commit {REF}", "committer x <x@example.com> 1772355600 +0000", "data 6", "notes"]
    if ref_from:
        rows.append(f"from {ref_from}")
    for obj, body in notes_by_obj.items():
        rows += [f"N inline {obj}", f"data {len(body.encode())}", body]
    return "\n".join(rows) + "\n"


def test_more_than_256_notes_merge_with_a_diverged_side(alice: Person, bob: Person, remote: Path) -> None:
    # 320 empty commits in one fast-import; alice notes the first 300 of them.
    rows = []
    for i in range(320):
        rows += ["commit refs/heads/many", f"mark :{i + 1}", f"committer x <x@example.com> {1772355600 + i} +0000",
                 f"data {len(f'c{i}')}", f"c{i}"]
    _fast_import(alice, "\n".join(rows) + "\n")
    shas = alice.repo.git("rev-list", "--reverse", "many").split()
    assert len(shas) == 320
    _fast_import(alice, _notes_commit(None, {shas[i]: f"alice {i}\n" for i in range(300)}))
    alice.repo.git("push", "-q", "origin", "many")
    assert sync_out(alice) == "receipts synced with origin: it had none, pushed ours"
    bob.repo.git("fetch", "-q", "origin", "many:many")
    bob.repo.aispend("sync")
    assert len(notes(bob.repo.path)) == 300
    # bob: a line more on 0-9, notes of 300-319 added, notes of 10-14 removed; a plain push.
    bob_notes = {shas[i]: f"alice {i}\nbob {i}\n" for i in range(10)} | {shas[i]: f"bob new {i}\n" for i in range(300, 320)}
    _fast_import(bob, _notes_commit(bob.repo.head(REF), bob_notes))
    bob.repo.git("notes", f"--ref={REF}", "remove", *shas[10:15])
    bob.repo.git("push", "-q", "origin", f"{REF}:{REF}")
    # alice meanwhile: a line more on 5-14 (diverged from bob).
    _fast_import(alice, _notes_commit(alice.repo.head(REF), {shas[i]: f"alice {i}\nalice2 {i}\n" for i in range(5, 15)}))
    started = time.monotonic()
    out = sync_out(alice)
    assert time.monotonic() - started < 10
    assert out == "receipts synced with origin: merged theirs, pushed ours; the remote had lost 5 receipt lines: published them again"
    want: dict[str, set[bytes]] = {shas[i]: {f"alice {i}".encode()} for i in range(300)}
    for i in range(10):
        want[shas[i]].add(f"bob {i}".encode())
    for i in range(5, 15):
        want[shas[i]].add(f"alice2 {i}".encode())
    for i in range(300, 320):
        want[shas[i]] = {f"bob new {i}".encode()}
    assert notes(alice.repo.path) == notes(remote) == want
    listed = git(alice.repo.path, "notes", f"--ref={REF}", "list").splitlines()
    assert sorted(r.split()[1] for r in listed) == sorted(shas)
    # The union's tree is fanned out (320 notes > 256), and git reads it as notes.
    top = git(alice.repo.path, "ls-tree", "--name-only", REF).split()
    assert top and all(len(name) == 2 for name in top)
    assert git(alice.repo.path, "notes", f"--ref={REF}", "show", shas[7]) == "alice 7\nalice2 7\nbob 7\n"
    bob.repo.aispend("sync")
    assert notes(bob.repo.path) == want
