# Sourced by build-node-image.sh and install-etcd-3.5.sh: the Debian mirrors this
# host already uses (deb822 sources or a classic sources.list), so that what the
# scripts download comes from where the host's own packages come from.

host_mirror() {  # $1: the suite, e.g. bookworm or bookworm-security
    local deb822
    for deb822 in /etc/apt/sources.list.d/*.sources; do
        [ -r "$deb822" ] || continue
        awk -v suite="$1" '
            /^URIs:/ {uris = $2}
            /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == suite) found = uris}
            /^$/ {if (found) exit; uris = ""}
            END {if (found) print found}' "$deb822"
    done
    if [ -r /etc/apt/sources.list ]; then
        awk -v suite="$1" '$1 == "deb" && $3 == suite {print $2}' /etc/apt/sources.list
    fi
}
