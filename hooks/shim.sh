#!/bin/sh
# aispend @HOOK@ hook: binds the AI spend of each commit to it, as a signed git note.
# Written by `aispend install`; `aispend uninstall` removes it and puts back any hook it replaced.
# aispend-hook: 1
HOOK=@HOOK@
AISPEND_PYTHON=@PYTHON@
AISPEND_TRAILER=@TRAILER@
here=$(dirname "$0")
if [ "$HOOK" = post-rewrite ]; then
  # git gives the rewritten commits on stdin: keep them for both hooks.
  rewritten=$(cat)
fi
status=0
# A hook that was here before aispend runs first, and its exit status is the hook's.
if [ -x "$here/$HOOK.aispend-legacy" ]; then
  if [ "$HOOK" = post-rewrite ]; then
    printf '%s\n' "$rewritten" | "$here/$HOOK.aispend-legacy" "$@"
  else
    "$here/$HOOK.aispend-legacy" "$@"
  fi
  status=$?
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
if [ "$HOOK" = post-rewrite ]; then
  printf '%s\n' "$rewritten" | run "$HOOK" "$@" 2>/dev/null
else
  run "$HOOK" "$@" </dev/null 2>/dev/null
fi
exit $status
