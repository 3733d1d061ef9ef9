#!/usr/bin/env bash
# Checks C++ sources against the repository's .clang-format.
#
#   bash scripts/check-format.sh          list files that need formatting; exit 1 if any
#   bash scripts/check-format.sh --fix    format them in place
#
# Checks tracked files plus new files git does not ignore, so it can be run
# before committing. CI uses Debian 12's clang-format 14; other versions may
# format slightly differently.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fix=0
case "${1:-}" in
  "") ;;
  --fix) fix=1 ;;
  *)
    echo "usage: $0 [--fix]" >&2
    exit 2
    ;;
esac

if ! command -v clang-format >/dev/null 2>&1; then
  echo "check-format: clang-format not found; run scripts/install-deps.sh" >&2
  exit 1
fi

files=()
while IFS= read -r -d '' f; do
  [[ -f "$f" ]] && files+=("$f")
done < <(git ls-files -z --cached --others --exclude-standard -- '*.h' '*.cpp' | sort -zu)

if ((${#files[@]} == 0)); then
  echo "check-format: no C++ files"
  exit 0
fi

if ((fix)); then
  clang-format -i --style=file "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi

bad=0
for f in "${files[@]}"; do
  if ! out="$(clang-format --dry-run --Werror --style=file "$f" 2>&1)"; then
    echo "needs formatting: $f"
    printf '%s\n' "$out" | head -n 6 | sed 's/^/    /'
    bad=$((bad + 1))
  fi
done

if ((bad)); then
  echo "check-format: $bad of ${#files[@]} files need formatting; run: bash scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files OK"
