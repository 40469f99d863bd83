# Profile names for `knock profile NAME`, `show NAME` and `remove NAME`, from
# `knock profile list --names` (the directory knock itself would use).
(( $+functions[_knock_profile_names] )) ||
_knock_profile_names() {
    local -a names
    names=(${(f)"$(_call_program profiles knock profile list --names 2>/dev/null)"})
    _describe -t profiles 'profile' names
}
