# conformance/live/net.sh - the network of the live capture scripts (scripts/live.sh,
# scripts/live-rate.sh). Sourced, not run; needs root.
#
# Three network namespaces named after the calling process: a client (NS_C, ADDR_C on IF_C)
# and a server (NS_S, ADDR_S on IF_S) joined by a veth pair, and a sensor (NS_T) whose veth
# IF_T receives a copy of every packet in and out of IF_S (tc mirred onto the pair IF_M/IF_T,
# as a switch's SPAN port copies a port). Captures run on IF_T in NS_T.

ID=${ID:-$$}
NS_C=wsl${ID}c NS_S=wsl${ID}s NS_T=wsl${ID}t
IF_C=wl${ID}c IF_S=wl${ID}s IF_M=wl${ID}m IF_T=wl${ID}t
# TEST-NET-1 (RFC 5737): addresses that exist only inside these namespaces.
ADDR_C=192.0.2.1 ADDR_S=192.0.2.2

live_net_up() {
  ip netns add "$NS_C"; ip netns add "$NS_S"; ip netns add "$NS_T"
  ip link add "$IF_C" netns "$NS_C" type veth peer name "$IF_S" netns "$NS_S"
  ip link add "$IF_M" netns "$NS_S" type veth peer name "$IF_T" netns "$NS_T"
  ip -n "$NS_C" addr add "$ADDR_C/24" dev "$IF_C"
  ip -n "$NS_S" addr add "$ADDR_S/24" dev "$IF_S"
  local pair
  for pair in "$NS_C $IF_C" "$NS_S $IF_S" "$NS_S $IF_M" "$NS_T $IF_T" "$NS_C lo" "$NS_S lo" "$NS_T lo"; do
    # shellcheck disable=SC2086 # namespace and interface, two words
    set -- $pair
    ip -n "$1" link set "$2" up
  done
  # Both directions of the server's interface, copied to the sensor's veth.
  ip netns exec "$NS_S" tc qdisc add dev "$IF_S" clsact
  local dir
  for dir in ingress egress; do
    ip netns exec "$NS_S" tc filter add dev "$IF_S" "$dir" protocol all u32 match u32 0 0 \
      action mirred egress mirror dev "$IF_M"
  done
}

live_net_down() {
  local ns
  for ns in "$NS_C" "$NS_S" "$NS_T"; do ip netns del "$ns" 2>/dev/null || true; done
}
