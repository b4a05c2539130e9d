# controlplane/meshctl/completion.bash — bash completion for meshctl.
# Use: source controlplane/meshctl/completion.bash (or install into
# /usr/share/bash-completion/completions/meshctl). Completes commands, each command's flags,
# kinds, output formats, files for -f and, for `get`/`delete`, names from the control plane
# (read with `meshctl get KIND -o json`, so it honours --server and $MESH_SERVER).

_meshctl_names()
{
    # $1: kind; $2: server flag words (may be empty). Prints the names of that kind, if reachable.
    local kind=$1 server=$2
    command meshctl $server get "$kind" -o json 2>/dev/null |
        sed -n 's/^    "name": "\([^"]*\)",\{0,1\}$/\1/p'
}

_meshctl()
{
    local cur prev words cword
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="apply get delete history rollback stats proxy-status inject help"
    local kinds="routes services circuitbreakers"

    # Find the command and any --server given before it.
    local i cmd="" server="" kindword=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        --server) server="--server ${COMP_WORDS[i+1]}"; ((i++)) ;;
        --server=*) server=${COMP_WORDS[i]} ;;
        -*) ;;
        *)
            if [[ -z $cmd ]]; then
                cmd=${COMP_WORDS[i]}
            elif [[ -z $kindword ]]; then
                kindword=${COMP_WORDS[i]}
            fi
            ;;
        esac
    done

    case $prev in
    --server) return 0 ;;
    -f | --filename)
        COMPREPLY=($(compgen -f -- "$cur"))
        [[ $cur != -* ]] && COMPREPLY+=($(compgen -W "-" -- "$cur"))
        return 0
        ;;
    -o | --output)
        case $cmd in
        get) COMPREPLY=($(compgen -W "table yaml json" -- "$cur")) ;;
        *) COMPREPLY=($(compgen -W "table json" -- "$cur")) ;;
        esac
        return 0
        ;;
    --timeout | --window | --interval)
        COMPREPLY=($(compgen -W "500ms 2s 10s 30s 1m" -- "$cur"))
        return 0
        ;;
    esac

    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands --server --help --version" -- "$cur"))
        return 0
    fi

    local flags=""
    case $cmd in
    apply) flags="-f --filename -w --wait --timeout --dry-run" ;;
    get) flags="-o --output -n --namespace --config-version" ;;
    delete) flags="-n --namespace" ;;
    history) flags="--limit -o --output" ;;
    rollback) flags="" ;;
    stats) flags="--route -n --namespace -o --output --window -w --watch --interval --count" ;;
    proxy-status) flags="-o --output" ;;
    inject) flags="-f --filename" ;;
    help) COMPREPLY=($(compgen -W "$commands" -- "$cur")); return 0 ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags --server --help" -- "$cur"))
        return 0
    fi
    case $cmd in
    get | delete)
        if [[ -z $kindword ]]; then
            COMPREPLY=($(compgen -W "$kinds" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$(_meshctl_names "$kindword" "$server")" -- "$cur"))
        fi
        ;;
    esac
    return 0
}

complete -F _meshctl meshctl
