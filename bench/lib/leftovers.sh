# Sourced by the bench scripts. remove_leftovers DIR: a server that was stopped must leave nothing
# under its data directory DIR; anything there is a server bug, so report it, then remove what is
# ours: runc containers whose bundle lies under DIR, and mounts under DIR (deepest first).
# Needs a `log` function in the caller.
remove_leftovers() {
  local dir=$1 left
  if command -v runc >/dev/null && command -v jq >/dev/null; then
    left=$(runc list --format json 2>/dev/null | jq -r --arg w "$dir/" '.[]? | select(.bundle | startswith($w)) | .id' || true)
    if [ -n "$left" ]; then
      log "WARNING: the server left containers behind: $left (removing them)"
      for c in $left; do runc delete --force "$c" >/dev/null 2>&1 || true; done
    fi
  fi
  { grep -F " $dir/" /proc/self/mounts || true; } | awk '{print $2}' | sort -r | while read -r mnt; do
    log "WARNING: the server left a mount behind: $mnt (unmounting)"
    umount -l "$mnt" 2>/dev/null || true
  done
}
