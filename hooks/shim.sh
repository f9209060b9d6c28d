#!/bin/sh
# aispend @HOOK@ hook: binds the AI spend of each commit to it, as a signed git note.
# Written by `aispend install`; `aispend uninstall` removes it and puts back any hook it replaced.
# aispend-hook: 1
HOOK=@HOOK@
AISPEND_PYTHON=@PYTHON@
AISPEND_TRAILER=@TRAILER@
here=$(dirname "$0")
if [ "$HOOK" = post-rewrite ] || [ "$HOOK" = pre-push ]; then
  # git gives the rewritten commits (the refs being pushed) on stdin: keep them for both hooks.
  rewritten=$(cat)
fi
status=0
# A hook that was here before aispend runs first, and its exit status is the hook's.
if [ -x "$here/$HOOK.aispend-legacy" ]; then
  if [ "$HOOK" = post-rewrite ] || [ "$HOOK" = pre-push ]; then
    printf '%s\n' "$rewritten" | "$here/$HOOK.aispend-legacy" "$@"
  else
    "$here/$HOOK.aispend-legacy" "$@"
  fi
  status=$?
fi
# AISPEND_HOOKS=0: aispend stays out of this one command.
[ "$AISPEND_HOOKS" = 0 ] && exit $status
nl='
'
if [ "$HOOK" = prepare-commit-msg ]; then
  # git removes CHERRY_PICK_HEAD before post-commit when a conflicted cherry-pick is
  # concluded (or with -e): keep it for post-commit, which names the source from it.
  gd=$(git rev-parse --absolute-git-dir 2>/dev/null)
  if [ -n "$gd" ]; then
    if [ -f "$gd/CHERRY_PICK_HEAD" ]; then
      [ -d "$gd/aispend-queue" ] || mkdir "$gd/aispend-queue" 2>/dev/null
      cp "$gd/CHERRY_PICK_HEAD" "$gd/aispend-queue/.cherry-pick-head" 2>/dev/null
    elif [ -f "$gd/aispend-queue/.cherry-pick-head" ]; then
      rm -f "$gd/aispend-queue/.cherry-pick-head"
    fi
  fi
fi
# Without an editor (commit -m, --no-edit) there is nothing to show in the message:
# spare the commit a Python start-up, unless receipts are announced as trailers.
if [ "$HOOK" = prepare-commit-msg ] && [ "$GIT_EDITOR" = ":" ] && [ "$AISPEND_TRAILER" != 1 ]; then
  exit $status
fi
# aispend itself never fails a commit, and says nothing when it is gone.
if [ -x "$AISPEND_PYTHON" ]; then
  run() { "$AISPEND_PYTHON" -m aispend.hookrun "$@"; }
elif command -v aispend >/dev/null 2>&1; then
  run() { aispend hook "$@"; }
else
  exit $status
fi
if [ "$HOOK" = prepare-commit-msg ]; then
  run "$HOOK" "$@" </dev/null 2>/dev/null
  exit $status
fi
if [ "$HOOK" = pre-push ]; then
  # Sync the receipts with the remote being pushed to: a warning at worst, never a blocked push.
  [ "$status" = 0 ] && run "$HOOK" "$@" </dev/null
  exit $status
fi
# post-commit, post-rewrite, post-merge: write down the facts of the moment in a queue in the
# git dir (file reads and one git process), then build the receipt in the background: the
# commit does not wait for it. The queue keeps the order, however fast commits follow each
# other, and the entry's modification time is the moment of the commit: a receipt claims the
# usage logged up to it, however late it is built.
out=$(git rev-parse --absolute-git-dir HEAD 2>/dev/null) || exit $status
gd=${out%%"$nl"*}
head=${out#*"$nl"}
# The queue: in the git dir; a linked worktree's in the repository's common dir, so that
# 'git worktree remove' right after a commit does not take the entry with it.
common=; { read -r common < "$gd/commondir"; } 2>/dev/null
case $common in
  "") common=$gd; q="$gd/aispend-queue" ;;
  *) case $common in /*) ;; *) common="$gd/$common" ;; esac
     # Made absolute now: the path through this worktree's git dir goes when it is removed.
     common=$(cd "$common" 2>/dev/null && pwd -P) || exit $status
     q="$common/aispend-queue/worktrees/${gd##*/}" ;;
esac
[ -d "$q" ] || mkdir -p "$q" 2>/dev/null || exit $status
n=0
{ read -r n < "$q/.seq"; } 2>/dev/null
case $n in ""|*[!0-9]*) n=0 ;; esac
n=$((n + 1))
echo "$n" > "$q/.seq"
# The process id keeps two hooks that run at once (two commits in one worktree) apart.
entry="$q/$(printf '%012d' "$n").$$.$HOOK"
headref=; cherry=; todo=; created=; rebase_head=
{ read -r headref < "$gd/HEAD"; } 2>/dev/null
# The branch's first reflog line says when and from what it was created: usage logged on
# that branch before then may be claimed here (kept now: the branch may be gone by the time
# the entry is handled).
case $headref in
  "ref: refs/heads/"*) { read -r created < "$common/logs/${headref#ref: }"; } 2>/dev/null ;;
esac
{ read -r rebase_head < "$gd/rebase-merge/head-name"; } 2>/dev/null || { read -r rebase_head < "$gd/rebase-apply/head-name"; } 2>/dev/null
{ read -r cherry < "$gd/CHERRY_PICK_HEAD"; } 2>/dev/null
if [ "$HOOK" = post-commit ] && [ -f "$gd/aispend-queue/.cherry-pick-head" ]; then
  [ -n "$cherry" ] || { read -r cherry < "$gd/aispend-queue/.cherry-pick-head"; } 2>/dev/null
  rm -f "$gd/aispend-queue/.cherry-pick-head"
fi
{ read -r todo < "$gd/sequencer/todo"; } 2>/dev/null
{
  echo "hook=$HOOK"
  echo "worktree=$PWD"
  echo "common=$common"
  echo "head=$head"
  echo "headref=$headref"
  echo "reflog=$(tail -n 1 "$gd/logs/HEAD" 2>/dev/null)"
  if [ -d "$gd/rebase-merge" ] || [ -d "$gd/rebase-apply" ]; then echo "rebasing=1"; fi
  if [ -f "$gd/rebase-merge/amend" ]; then
    # The commit a rebase stopped at (to edit it, or to resolve a conflict).
    stopped=; { read -r stopped < "$gd/rebase-merge/amend"; } 2>/dev/null
    echo "edit_stop=1"; echo "stopped=$stopped"
  fi
  echo "cherry_pick_head=$cherry"
  echo "todo=$todo"
  echo "created=$created"
  echo "rebase_head=$rebase_head"
  if [ -n "$AISPEND_NOW" ]; then echo "now=$AISPEND_NOW"; fi
  echo "args=$*"
  echo "--"
  if [ "$HOOK" = post-rewrite ]; then printf '%s\n' "$rewritten"; fi
} > "$entry.tmp" 2>/dev/null && mv "$entry.tmp" "$entry" || exit $status
if [ "$AISPEND_HOOK_SYNC" = 1 ]; then
  run drain "$gd" "$q" </dev/null >/dev/null 2>&1
else
  # A drain already at work takes the new entry too.
  pid=
  { read -r pid < "$q/.pid"; } 2>/dev/null
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    # exec first: a redirection on the call itself would leave copies of git's
    # output pipes open in the background process (dash), and whoever reads
    # git's output would wait for it.
    # In the common dir: the worktree may be removed before the drain has started.
    (exec </dev/null >/dev/null 2>&1; cd "$common" && run drain "$gd" "$q" &)
  fi
fi
exit $status
