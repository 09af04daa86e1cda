#!/usr/bin/env bash
# Records tinc.pcap, iodine.pcap and ptunnel.pcap: real tinc 1.0, iodine
# 0.7 and ptunnel-ng 1.42 (Debian 12) between two network namespaces of
# their own, a "host" (192.168.90.31) and a "server" (198.51.100.31) on
# one veth pair, captured at the host. As root; needs the Debian packages
# tinc, iodine and ptunnel-ng. Every process and namespace it makes is
# removed on exit, also on failure. Usage: record-tunnels.sh OUTDIR
set -euo pipefail
out=$(realpath "${1:?usage: record-tunnels.sh OUTDIR}")
tag="vpnfp-rec-$$"
host="$tag-h"
server="$tag-s"
work=$(mktemp -d)
pids=()

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    ip netns del "$host" 2>/dev/null || true
    ip netns del "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$host"
ip netns add "$server"
ip link add "${tag:0:8}h" type veth peer name "${tag:0:8}s"
ip link set "${tag:0:8}h" netns "$host" name lan0
ip link set "${tag:0:8}s" netns "$server" name wan0
ip -n "$host" addr add 192.168.90.31/24 dev lan0
ip -n "$server" addr add 198.51.100.31/24 dev wan0
for ns in "$host" "$server"; do
    ip -n "$ns" link set lo up
done
ip -n "$host" link set lan0 up
ip -n "$server" link set wan0 up
ip -n "$host" route add 198.51.100.31/32 dev lan0
ip -n "$server" route add 192.168.90.31/32 dev wan0

in_host() { ip netns exec "$host" "$@"; }
in_server() { ip netns exec "$server" "$@"; }

capture() { # NAME: starts tcpdump at the host's port
    in_host tcpdump -i lan0 -U -s 0 -w "$work/$1.pcap" 2>/dev/null &
    pids+=($!)
    sleep 1
}

stop_last() { # stops what was started since mark $1
    local from=$1
    for pid in "${pids[@]:$from}"; do kill "$pid" 2>/dev/null || true; done
    sleep 1
}

# --- tinc 1.0: meta connection on TCP 655, packets on UDP 655 ---
for node in alice bob; do
    mkdir -p "$work/$node/hosts"
done
cat > "$work/alice/tinc.conf" <<EOF
Name = alice
ConnectTo = bob
Interface = tinc0
EOF
cat > "$work/bob/tinc.conf" <<EOF
Name = bob
Interface = tinc0
EOF
echo "Subnet = 10.77.0.1/32" > "$work/alice/hosts/alice"
printf 'Address = 198.51.100.31\nSubnet = 10.77.0.2/32\n' > "$work/bob/hosts/bob"
for node in alice bob; do
    tincd -c "$work/$node" -K2048 < /dev/null > /dev/null 2>&1
done
cp "$work/alice/hosts/alice" "$work/bob/hosts/alice"
cp "$work/bob/hosts/bob" "$work/alice/hosts/bob"
printf '#!/bin/sh\nip addr add 10.77.0.1/24 dev $INTERFACE\nip link set $INTERFACE up\n' > "$work/alice/tinc-up"
printf '#!/bin/sh\nip addr add 10.77.0.2/24 dev $INTERFACE\nip link set $INTERFACE up\n' > "$work/bob/tinc-up"
chmod +x "$work/alice/tinc-up" "$work/bob/tinc-up"
mark=${#pids[@]}
capture tinc
in_server tincd -c "$work/bob" -D --pidfile="$work/bob.pid" > /dev/null 2>&1 &
pids+=($!)
sleep 1
in_host tincd -c "$work/alice" -D --pidfile="$work/alice.pid" > /dev/null 2>&1 &
pids+=($!)
sleep 4
in_host ping -c 5 -i 0.3 -W 1 10.77.0.2 > /dev/null || true
stop_last "$mark"

# --- iodine: IP over DNS queries to the server's port 53 ---
mark=${#pids[@]}
capture iodine
in_server iodined -f -c -P vpnfp-test 10.78.0.1 t.example.org > /dev/null 2>&1 &
pids+=($!)
sleep 1
# -r: no raw UDP mode, the DNS path only (what a resolver would relay).
in_host timeout 20 iodine -f -r -P vpnfp-test 198.51.100.31 t.example.org > /dev/null 2>&1 &
pids+=($!)
sleep 6
in_host ping -c 5 -i 0.3 -W 1 10.78.0.1 > /dev/null || true
stop_last "$mark"

# --- ptunnel-ng: TCP carried in ICMP echoes ---
mark=${#pids[@]}
in_server python3 -m http.server --bind 127.0.0.1 8000 > /dev/null 2>&1 &
pids+=($!)
capture ptunnel
in_server ptunnel-ng > /dev/null 2>&1 &
pids+=($!)
sleep 1
in_host ptunnel-ng -p198.51.100.31 -l2222 -r127.0.0.1 -R8000 > /dev/null 2>&1 &
pids+=($!)
sleep 2
for _ in 1 2 3; do
    in_host curl -s -m 5 -o /dev/null http://127.0.0.1:2222/ || true
done
stop_last "$mark"

# The first 80 packets of each tool's own traffic (a stopped daemon's
# last packets can reach the next capture): handshakes and first data.
for spec in "tinc:port 655" "iodine:udp port 53" "ptunnel:icmp"; do
    name=${spec%%:*}
    tcpdump -r "$work/$name.pcap" -w "$out/$name.pcap" -c 80 "ip and ${spec#*:}" 2> /dev/null
    echo "$out/$name.pcap: $(tcpdump -r "$out/$name.pcap" 2>/dev/null | wc -l) packets"
done
