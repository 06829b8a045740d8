#!/bin/sh
# Guest script for vm-tests/run: checks that IPVS works in the VM.
# Usage (host): vm-tests/run vm-tests/smoke.sh
set -eu
echo "kernel: $(uname -r)"
ipvsadm --version
ipvsadm -A -t 192.0.2.100:80 -s wrr
ipvsadm -a -t 192.0.2.100:80 -r 192.0.2.11:80 -g -w 2
out=$(ipvsadm -Ln)
echo "$out"
echo "$out" | grep -q 'TCP  192.0.2.100:80 wrr' || { echo "FAIL: virtual service missing"; exit 1; }
echo "$out" | grep -q '192.0.2.11:80 *Route *2 ' || { echo "FAIL: real server missing"; exit 1; }
ipvsadm -C
[ "$(ipvsadm -Ln | grep -c 192.0.2)" = 0 ] || { echo "FAIL: ipvsadm -C left entries"; exit 1; }
ip link add vmdummy0 type dummy
ip link set vmdummy0 up
ip link add vmveth0 type veth peer name vmveth1
echo "interfaces: $(ls /sys/class/net | tr '\n' ' ')"
echo "smoke: ok"
