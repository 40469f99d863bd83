# Profile names for `knock profile NAME`, `show NAME` and `remove NAME`, from
# `knock profile list --names` (the directory knock itself would use).
complete -c knock -n "__fish_knock_using_subcommand profile; and not __fish_seen_subcommand_from list show save remove import help" -f -a "(knock profile list --names 2>/dev/null)" -d profile
complete -c knock -n "__fish_knock_using_subcommand profile; and __fish_seen_subcommand_from show remove" -f -a "(knock profile list --names 2>/dev/null)" -d profile
