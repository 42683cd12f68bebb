# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_cdss_precheck_exporter_global_optspecs
    string join \n config.file= config.check config.auto-reload-interval= web.listen-address= web.config.file= demo log.level= log.format= h/help V/version
end

function __fish_cdss_precheck_exporter_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_cdss_precheck_exporter_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_cdss_precheck_exporter_using_subcommand
    set -l cmd (__fish_cdss_precheck_exporter_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -l config.file -d 'Path to the YAML configuration file' -r -F
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -l config.auto-reload-interval -d 'Re-read the config file this often and reload it when its content changed (e.g. 30s). Off by default; SIGHUP and POST /-/reload always work' -r
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -l web.listen-address -d 'Address to listen on for /metrics and the other endpoints (":PORT" means every interface)' -r
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -l web.config.file -d 'TLS and basic auth for the endpoints, in the Prometheus exporter-toolkit format (tls_server_config, basic_auth_users). Re-read when it changes. See README' -r -F
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -l log.level -d 'Only log messages with the given severity or above (RUST_LOG, if set, overrides this)' -r -f -a "error\t'Errors only'
warn\t'Warnings and errors'
info\t'The default'
debug\t'Every precheck'
trace\t'Everything'"
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -l log.format -d 'Output format of log messages (always to stderr)' -r -f -a "logfmt\t'`key=value` pairs, one event per line'
json\t'One JSON object per line'"
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -l config.check -d 'Validate the configuration file, print the result and exit (0 valid, 2 invalid)'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -l demo -d 'Start an embedded simulated NCP gateway with demo clusters and credentials, and export from it. Ignores --config.file. No NCP account needed. With `check` or `restart`: against the demo\'s gateway, started in the same process'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -s V -l version -d 'Print version'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -f -a "check" -d 'Precheck clusters from the config NOW and answer go / no-go (for maintenance pipelines).'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -f -a "restart" -d 'Restart a cluster\'s nodes one at a time, only when its precheck says ready; then watch.'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -f -a "healthcheck" -d 'Probe this exporter\'s own /-/healthy over loopback: exit 0 healthy, 1 not (with the reason on stderr). For container health checks in an image without a shell'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -f -a "completions" -d 'Print a shell completion script on stdout (bash, zsh, fish, elvish, powershell)'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -f -a "man" -d 'Print a man page (roff) on stdout: `cdss-precheck-exporter man | man -l -`'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand check" -l cluster -d 'A cluster name from the config; repeat for several' -r
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand check" -l wait -d 'Poll until every named cluster is ready, for at most this long (e.g. 15m)' -r
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand check" -l every -d 'Time between polls with --wait (a 429\'s Retry-After, if longer, wins)' -r
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand check" -l config.file -d 'Path to the YAML configuration file' -r -F
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand check" -l log.level -d 'Only log messages with the given severity or above (RUST_LOG, if set, overrides this)' -r -f -a "error\t'Errors only'
warn\t'Warnings and errors'
info\t'The default'
debug\t'Every precheck'
trace\t'Everything'"
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand check" -l log.format -d 'Output format of log messages (always to stderr)' -r -f -a "logfmt\t'`key=value` pairs, one event per line'
json\t'One JSON object per line'"
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand check" -l all -d 'Every cluster in the config'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand check" -l json -d 'Print one JSON document instead of a table'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand check" -l demo -d 'Start an embedded simulated NCP gateway with demo clusters and credentials, and export from it. Ignores --config.file. No NCP account needed. With `check` or `restart`: against the demo\'s gateway, started in the same process'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -l cluster -d 'The cluster to restart, by its name in the config (or found by its discovery blocks)' -r
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -l account -d 'Sign every call with this account\'s keys (`default` is `credentials:`, others are in `accounts:`) instead of the cluster\'s: a key with write access kept apart from the exporter\'s read-only one' -r
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -l every -d 'Time between two progress readings' -r
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -l timeout -d 'End the watch after this long (the restart may still be running at NCP)' -r
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -l start-grace -d 'How long to wait for the restart to show (NCP may start it a little after accepting it)' -r
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -l config.file -d 'Path to the YAML configuration file' -r -F
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -l log.level -d 'Only log messages with the given severity or above (RUST_LOG, if set, overrides this)' -r -f -a "error\t'Errors only'
warn\t'Warnings and errors'
info\t'The default'
debug\t'Every precheck'
trace\t'Everything'"
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -l log.format -d 'Output format of log messages (always to stderr)' -r -f -a "logfmt\t'`key=value` pairs, one event per line'
json\t'One JSON object per line'"
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -l yes -d 'Start without asking (required without a terminal)'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -l dry-run -d 'Do everything up to the start, say what would be sent, and exit 0 when it would start'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -l watch-only -d 'Start nothing: watch a restart that is already running (after Ctrl-C, or one started in NCP\'s console) until it is over'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -l json -d 'Print one JSON report on stdout instead of a line'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -l demo -d 'Start an embedded simulated NCP gateway with demo clusters and credentials, and export from it. Ignores --config.file. No NCP account needed. With `check` or `restart`: against the demo\'s gateway, started in the same process'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand restart" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand healthcheck" -l web.listen-address -d 'The exporter\'s --web.listen-address (":PORT" and "0.0.0.0:PORT" are probed on loopback)' -r
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand healthcheck" -l web.config.file -d 'The exporter\'s --web.config.file: whether to speak TLS, and whether basic auth is needed' -r -F
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand healthcheck" -l username -d 'Basic auth user name (one of the web config\'s basic_auth_users)' -r
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand healthcheck" -l password-file -d 'File holding that user\'s password (a trailing line end is ignored)' -r -F
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand healthcheck" -l config.file -d 'Path to the YAML configuration file' -r -F
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand healthcheck" -l log.level -d 'Only log messages with the given severity or above (RUST_LOG, if set, overrides this)' -r -f -a "error\t'Errors only'
warn\t'Warnings and errors'
info\t'The default'
debug\t'Every precheck'
trace\t'Everything'"
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand healthcheck" -l log.format -d 'Output format of log messages (always to stderr)' -r -f -a "logfmt\t'`key=value` pairs, one event per line'
json\t'One JSON object per line'"
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand healthcheck" -l demo -d 'Start an embedded simulated NCP gateway with demo clusters and credentials, and export from it. Ignores --config.file. No NCP account needed. With `check` or `restart`: against the demo\'s gateway, started in the same process'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand healthcheck" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand completions" -l config.file -d 'Path to the YAML configuration file' -r -F
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand completions" -l log.level -d 'Only log messages with the given severity or above (RUST_LOG, if set, overrides this)' -r -f -a "error\t'Errors only'
warn\t'Warnings and errors'
info\t'The default'
debug\t'Every precheck'
trace\t'Everything'"
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand completions" -l log.format -d 'Output format of log messages (always to stderr)' -r -f -a "logfmt\t'`key=value` pairs, one event per line'
json\t'One JSON object per line'"
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand completions" -l demo -d 'Start an embedded simulated NCP gateway with demo clusters and credentials, and export from it. Ignores --config.file. No NCP account needed. With `check` or `restart`: against the demo\'s gateway, started in the same process'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand man" -l config.file -d 'Path to the YAML configuration file' -r -F
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand man" -l log.level -d 'Only log messages with the given severity or above (RUST_LOG, if set, overrides this)' -r -f -a "error\t'Errors only'
warn\t'Warnings and errors'
info\t'The default'
debug\t'Every precheck'
trace\t'Everything'"
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand man" -l log.format -d 'Output format of log messages (always to stderr)' -r -f -a "logfmt\t'`key=value` pairs, one event per line'
json\t'One JSON object per line'"
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand man" -l demo -d 'Start an embedded simulated NCP gateway with demo clusters and credentials, and export from it. Ignores --config.file. No NCP account needed. With `check` or `restart`: against the demo\'s gateway, started in the same process'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand help; and not __fish_seen_subcommand_from check restart healthcheck completions man help" -f -a "check" -d 'Precheck clusters from the config NOW and answer go / no-go (for maintenance pipelines).'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand help; and not __fish_seen_subcommand_from check restart healthcheck completions man help" -f -a "restart" -d 'Restart a cluster\'s nodes one at a time, only when its precheck says ready; then watch.'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand help; and not __fish_seen_subcommand_from check restart healthcheck completions man help" -f -a "healthcheck" -d 'Probe this exporter\'s own /-/healthy over loopback: exit 0 healthy, 1 not (with the reason on stderr). For container health checks in an image without a shell'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand help; and not __fish_seen_subcommand_from check restart healthcheck completions man help" -f -a "completions" -d 'Print a shell completion script on stdout (bash, zsh, fish, elvish, powershell)'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand help; and not __fish_seen_subcommand_from check restart healthcheck completions man help" -f -a "man" -d 'Print a man page (roff) on stdout: `cdss-precheck-exporter man | man -l -`'
complete -c cdss-precheck-exporter -n "__fish_cdss_precheck_exporter_using_subcommand help; and not __fish_seen_subcommand_from check restart healthcheck completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
