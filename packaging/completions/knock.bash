# Profile names (added to what clap completes above): `knock profile NAME`,
# `knock profile show NAME` and `knock profile remove NAME` complete from
# `knock profile list --names`, in the directory a --profiles on the line names, else
# $KNOCK_PROFILES, else knock's default.
_knock_with_profiles() {
    _knock "$@"
    local cur=${COMP_WORDS[COMP_CWORD]} i words=() dir=()
    [[ $cur == -* ]] && return 0
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --profiles) dir=(--profiles "${COMP_WORDS[i + 1]}"); ((i++)) ;;
            --profiles=*) dir=("${COMP_WORDS[i]}") ;;
            -*) ;;
            *) words+=("${COMP_WORDS[i]}") ;;
        esac
    done
    [[ ${words[0]} == profile ]] || return 0
    if ((${#words[@]} == 1)) || [[ ${#words[@]} -eq 2 && ${words[1]} =~ ^(show|remove)$ ]]; then
        local names IFS=$'\n'
        names=$(command knock profile list --names "${dir[@]}" 2>/dev/null) || return 0
        COMPREPLY+=($(compgen -W "$names" -- "$cur"))
    fi
    return 0
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _knock_with_profiles -o nosort -o bashdefault -o default knock
else
    complete -F _knock_with_profiles -o bashdefault -o default knock
fi
