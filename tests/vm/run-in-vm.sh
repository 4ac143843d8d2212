#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Run a command as root inside a virtual machine that boots Debian 12's own
# kernel (linux-image-amd64, 6.1), to test memcr on a kernel older than the
# host's: 6.1 has no PAGEMAP_SCAN, among other differences; or, with --arch
# aarch64, Debian 12's arm64 kernel on an emulated arm64 machine, to test
# memcr built for arm64.
#
#   run-in-vm.sh [OPTIONS] -- COMMAND [ARG...]
#
#   --arch ARCH         the guest's processor: x86_64 (default), or
#                       aarch64: Debian 12's arm64 kernel on
#                       qemu-system-aarch64 -M virt, for programs built
#                       with cross/aarch64-linux-gnu.ini; the command is
#                       run by an arm64 busybox sh, with the libraries of
#                       scripts/deps.sh --arm64's Criterion sysroot
#                       (more at the top of run-in-vm.sh)
#   --kernel-cache DIR  where the kernel is kept between runs
#                       (default: $MEMCR_VM_KERNEL_CACHE, else
#                       /var/cache/memcr-tests, else ~/.cache/memcr-tests)
#   --timeout SEC       the whole run, boot included, ends after SEC seconds
#                       (default: 1800); a little before, the guest lists
#                       the processes still running and ends them
#   --memory SIZE       guest memory, as qemu's -m takes it (default: 3G)
#   --cpus N            guest processors (default: 2)
#   --env NAME          also pass the host's variable NAME (repeatable)
#   --dmesg             print the guest's kernel log after the command
#                       (without it: what the kernel logged while the
#                       command ran, if it failed)
#
# The guest is qemu-system-x86_64 with TCG (no KVM: it works inside another
# virtual machine too). Its root is the host's, shared read-only over
# virtio-9p, with an overlay whose writable layer is in the guest's memory:
# the command sees every file of the host at the same path and may write
# anywhere, and nothing it writes reaches the host. /tmp, /run, /var/tmp and
# /dev/shm are fresh tmpfs (what the command needs from the host's /tmp,
# such as a build tree there, stays visible). The loopback interface is up.
# The command runs in the current directory, with the host's PATH, MEMCR*,
# CRITERION_*, ASAN_OPTIONS, UBSAN_OPTIONS, LSAN_OPTIONS, MALLOC_PERTURB_,
# LANG, LC_* and TZ variables; no standard input. Its output (standard
# output and error together, on the serial console) is printed as it comes,
# after a line with the guest's kernel release. The kernel's sysctls are
# Debian's defaults, as on a Debian 12 machine that sets none.
#
# The kernel package (the one linux-image-amd64 depends on) is fetched with
# apt-get download and unpacked with dpkg -x into the cache, never installed
# on the host; the package lists are looked at again once a day
# (MEMCR_VM_KERNEL_UPDATE=1: now), and the kernel kept is used when nothing
# can be fetched. Needs qemu-system-x86, busybox-static and cpio
# (scripts/deps.sh).
#
# With --arch aarch64 the guest is qemu-system-aarch64 -M virt with TCG and
# Debian 12's arm64 kernel (the one linux-image-arm64:arm64 depends on, kept
# in the cache's arm64/ directory), for programs built with
# cross/aarch64-linux-gnu.ini. The host's root is shared the same way; arm64
# programs in it run through the arm64 loader and libraries that multiarch
# installs beside the host's, and the host's x86_64 programs cannot run. So
# the command is run by an arm64 busybox (busybox-static:arm64, fetched into
# the cache like the kernel), whose applets come first in PATH
# (/run/memcr-vm/bin) and which is /bin/sh as well, in the guest only; the
# command itself must be an arm64 program, a script for sh, or a busybox
# applet. The library directory of the Criterion sysroot that scripts/deps.sh
# --arm64 unpacks ($MEMCR_ARM64_SYSROOT, default
# /var/cache/memcr-tests/arm64-sysroot) is added at the end of the guest's
# LD_LIBRARY_PATH (which --env LD_LIBRARY_PATH passes). Needs qemu-system-arm
# as well (scripts/deps.sh --arm64).
#
# Exit status: the command's; 77 if the machine cannot run here (tools or
# kernel missing); 124 if the timeout expired; 125 if the guest ended without
# telling the command's status (it did not boot, or crashed).

set -euo pipefail

usage() {
        sed -n '/^#   run-in-vm.sh/,/^#  *command ran, if it failed)/s/^# \{0,1\}//p' "$0" >&2
        exit 2
}

arch=x86_64
cache=${MEMCR_VM_KERNEL_CACHE:-}
timeout_s=1800
memory=3G
cpus=2
dmesg=0
extra_env=()
while [ $# -gt 0 ]; do
        case $1 in
        --arch) arch=${2:?}; shift 2 ;;
        --arch=*) arch=${1#*=}; shift ;;
        --kernel-cache) cache=${2:?}; shift 2 ;;
        --kernel-cache=*) cache=${1#*=}; shift ;;
        --timeout) timeout_s=${2:?}; shift 2 ;;
        --timeout=*) timeout_s=${1#*=}; shift ;;
        --memory) memory=${2:?}; shift 2 ;;
        --memory=*) memory=${1#*=}; shift ;;
        --cpus) cpus=${2:?}; shift 2 ;;
        --cpus=*) cpus=${1#*=}; shift ;;
        --env) extra_env+=("${2:?}"); shift 2 ;;
        --env=*) extra_env+=("${1#*=}"); shift ;;
        --dmesg) dmesg=1; shift ;;
        --) shift; break ;;
        *) usage ;;
        esac
done
[ $# -gt 0 ] || usage
case $arch in
x86_64|amd64) arch=x86_64 deb_arch=amd64 apt_arch= ;;
aarch64|arm64) arch=aarch64 deb_arch=arm64 apt_arch=:arm64 ;;
*) usage ;;
esac

say() { echo "run-in-vm: $*" >&2; }
cannot() { say "$*"; exit 77; }

for tool in "qemu-system-$arch" busybox cpio apt-get dpkg-deb flock timeout; do
        command -v "$tool" >/dev/null || cannot "$tool is missing (scripts/deps.sh installs it)"
done
busybox=$(command -v busybox)
# The initramfs has no libraries: its busybox must be the static one.
static() {
        if command -v readelf >/dev/null && LC_ALL=C readelf -l "$1" | grep -q 'Requesting program interpreter'; then
                cannot "$1 is not statically linked (install busybox-static)"
        fi
}
static "$busybox"

if [ -z "$cache" ]; then
        if [ -w /var/cache ] || [ -w /var/cache/memcr-tests ]; then
                cache=/var/cache/memcr-tests
        else
                cache=${XDG_CACHE_HOME:-$HOME/.cache}/memcr-tests
        fi
fi
mkdir -p "$cache"
cache=$(realpath "$cache")
# Where the kernels (and the busybox) of this architecture are kept: the
# amd64 ones in the cache itself, the others each in a directory of its own.
kcache=$cache
[ "$arch" = x86_64 ] || kcache=$cache/$deb_arch
mkdir -p "$kcache"

work=$(mktemp -d "${TMPDIR:-/tmp}/memcr-vm.XXXXXX")
qemu_pid=
# shellcheck disable=SC2317 # run by the trap
cleanup() {
        [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the kernel --------------------------------------------------------------

# Modules the guest needs for its root, with what they depend on.
WANT_MODULES=(virtio_pci 9pnet_virtio 9p overlay)

# The versioned package that linux-image-amd64 (linux-image-arm64:arm64)
# depends on, and its version.
kernel_package() {
        local pkg
        pkg=$(apt-cache depends "linux-image-$deb_arch$apt_arch" 2>/dev/null |
              sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1)
        [ -n "$pkg" ] || return 1
        local ver
        ver=$(candidate "$pkg") || return 1
        echo "$pkg $ver"
}

# The version of PKG that apt would fetch.
candidate() {
        local ver
        ver=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p')
        [ -n "$ver" ] && [ "$ver" != "(none)" ] || return 1
        echo "$ver"
}

# download PKG VER TMP: fetch the package into TMP, a new directory in the
# cache, and print its file; on failure, say why and remove TMP.
download() {
        local pkg=$1 ver=$2 tmp=$3
        # apt-get download drops root to _apt for the transfer.
        chown _apt "$tmp" 2>/dev/null || true
        say "fetching $pkg $ver"
        if ! (cd "$tmp" && apt-get download -q "$pkg=$ver" >"$tmp/apt.log" 2>&1); then
                cat "$tmp/apt.log" >&2
                rm -rf "$tmp"
                return 1
        fi
        find "$tmp" -maxdepth 1 -name '*.deb' | head -n 1
}

# fill_cache PKG VER DIR: fetch the package, keep the kernel and the modules
# the guest loads, in load order (modules.load).
fill_cache() {
        local pkg=$1 ver=$2 dir=$3 tmp deb root kver
        tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
        deb=$(download "$pkg" "$ver" "$tmp") || return 1
        root=$tmp/root
        dpkg -x "$deb" "$root"
        kver=$(find "$root/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n 1)
        if [ -z "$kver" ] || [ ! -f "$root/boot/vmlinuz-$kver" ]; then
                say "$deb holds no kernel"
                rm -rf "$tmp"
                return 1
        fi
        # The package has no modules.dep (depmod runs when it is installed).
        busybox depmod -b "$root" "$kver"

        local mdir=$root/lib/modules/$kver out=$tmp/kernel
        mkdir -p "$out/modules"
        declare -A done_=()
        local order=()
        # add NAME-or-PATH: its dependencies first, then itself.
        add() {
                local rel=$1 line dep
                if [[ $rel != */* ]]; then
                        local name=${rel//-/_}
                        # Built into the kernel: nothing to load.
                        if sed 's/-/_/g' "$mdir/modules.builtin" | grep -q "/$name\.ko$"; then
                                return 0
                        fi
                        rel=$(grep -E "(^|/)($name|${name//_/-})\.ko:" "$mdir/modules.dep" | head -n 1 | cut -d: -f1)
                        [ -n "$rel" ] || { say "module $1 not found in $kver"; return 1; }
                fi
                [ -z "${done_[$rel]:-}" ] || return 0
                done_[$rel]=1
                line=$(grep -E "^$rel:" "$mdir/modules.dep" | cut -d: -f2)
                for dep in $line; do
                        add "$dep"
                done
                cp "$mdir/$rel" "$out/modules/"
                order+=("$(basename "$rel")")
        }
        local m
        for m in "${WANT_MODULES[@]}"; do
                add "$m" || { rm -rf "$tmp"; return 1; }
        done
        printf '%s\n' "${order[@]}" >"$out/modules.load"
        # A compressed arm64 Image is not booted by every qemu: unpacked.
        if [ "$(head -c 2 "$root/boot/vmlinuz-$kver" | od -An -tx1)" = " 1f 8b" ]; then
                gzip -dc "$root/boot/vmlinuz-$kver" >"$out/vmlinuz"
        else
                cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"
        fi
        cp "$root/boot/config-$kver" "$out/config"
        echo "$kver" >"$out/release"
        echo "$pkg $ver" >"$out/package"
        rm -rf "$dir"
        mv "$out" "$dir"
        rm -rf "$tmp"
}

# Newest kernel kept in the cache.
cached_kernel() {
        find "$kcache" -mindepth 2 -maxdepth 2 -name release -printf '%h\n' 2>/dev/null | sort -V | tail -n 1
}

# fetch_busybox VER DIR: the arm64 static busybox, as DIR/busybox.
fetch_busybox() {
        local ver=$1 dir=$2 tmp deb
        tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
        deb=$(download "busybox-static$apt_arch" "$ver" "$tmp") || return 1
        dpkg -x "$deb" "$tmp/root"
        if [ ! -f "$tmp/root/bin/busybox" ]; then
                say "$deb holds no busybox"
                rm -rf "$tmp"
                return 1
        fi
        mkdir "$tmp/out"
        cp "$tmp/root/bin/busybox" "$tmp/out/busybox"
        echo "busybox-static$apt_arch $ver" >"$tmp/out/package"
        rm -rf "$dir"
        mv "$tmp/out" "$dir"
        rm -rf "$tmp"
}

# Newest busybox kept in the cache.
cached_busybox() {
        find "$kcache" -mindepth 2 -maxdepth 2 -path '*/busybox-static_*/busybox' -printf '%h\n' 2>/dev/null | sort -V | tail -n 1
}

exec 9>"$cache/.lock"
flock 9
kdir=
# Debian's package is looked up again once a day (a new kernel, a security
# update), or every time with MEMCR_VM_KERNEL_UPDATE=1.
if [ "${MEMCR_VM_KERNEL_UPDATE:-0}" != 1 ] && [ -n "$(find "$kcache/.checked" -mmin -1440 2>/dev/null)" ]; then
        kdir=$(cached_kernel)
fi
if [ -n "$kdir" ]; then
        pv=
elif ! pv=$(kernel_package); then
        # A machine whose package lists were never downloaded.
        if [ "$(id -u)" = 0 ]; then
                apt-get update -qq >&2 || true
        fi
        pv=$(kernel_package) || pv=
fi
if [ -n "$pv" ]; then
        kname=${pv% *}
        kdir=$kcache/${kname%:*}_${pv#* }
        if [ -f "$kdir/release" ] || fill_cache "${pv% *}" "${pv#* }" "$kdir"; then
                touch "$kcache/.checked"
        else
                kdir=
        fi
fi
if [ -z "$kdir" ]; then
        # Offline, or the package is gone from the mirror: any kernel kept before.
        kdir=$(cached_kernel)
        [ -n "$kdir" ] || cannot "no Debian kernel package could be fetched into $kcache"
        say "using the kernel kept in $kdir"
fi
# The guest's busybox: the host's, or one of the guest's processor, looked up
# with the kernel.
guest_busybox=$busybox
if [ "$arch" != x86_64 ]; then
        bdir=
        [ -n "$pv" ] || bdir=$(cached_busybox)
        if [ -z "$bdir" ] && bv=$(candidate "busybox-static$apt_arch"); then
                bdir=$kcache/busybox-static_${bv//:/%3a}
                [ -f "$bdir/busybox" ] || fetch_busybox "$bv" "$bdir" || bdir=
        fi
        [ -n "$bdir" ] || bdir=$(cached_busybox)
        [ -n "$bdir" ] || cannot "no busybox-static$apt_arch could be fetched into $kcache"
        guest_busybox=$bdir/busybox
        static "$guest_busybox"
fi
flock -u 9
exec 9>&-

# --- the initramfs -----------------------------------------------------------

nonce=$(tr -d - </proc/sys/kernel/random/uuid)
marker="memcr-vm-exit-$nonce"
init=$work/initramfs
mkdir -p "$init"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,lower,rw,newroot,memcr-vm,modules}
cp "$guest_busybox" "$init/bin/busybox"
cp "$kdir"/modules/*.ko "$init/modules/"
cp "$kdir/modules.load" "$init/modules.load"
echo "$marker" >"$init/memcr-vm/marker"
echo "$dmesg" >"$init/memcr-vm/dmesg"
# The guest ends the command itself a little before the host's timeout.
margin=$((timeout_s / 5))
[ $margin -le 60 ] || margin=60
echo $((timeout_s - margin)) >"$init/memcr-vm/timeout"

# /tmp, /var/tmp and /run start empty (tmpfs). What the command needs from
# them, the current directory or a path in a MEMCR* variable (a build tree
# below /tmp), stays visible: its top directory there is the host's (with the
# writable overlay), mounted onto the new tmpfs. A line of DIR [TOP...] each.
keep=("$PWD" "$(realpath -m "$PWD")")
while IFS= read -r name; do
        case ${!name} in /*) keep+=("${!name}" "$(realpath -m "${!name}")") ;; esac
done < <(compgen -e | grep -E '^MEMCR' || true)
for d in /tmp /var/tmp /run; do
        declare -A tops=()
        whole=
        for k in "${keep[@]}"; do
                case $k/ in "$d"/*) ;; *) continue ;; esac
                [ -e "$k" ] || continue
                top=${k#"$d"/}
                top=${top%%/*}
                if [ -z "$top" ] || [[ $top = *[[:space:]]* ]]; then
                        whole=$k
                else
                        tops[$top]=1
                fi
        done
        if [ -n "$whole" ]; then
                # Not a tmpfs at all (O_TMPFILE, for one, needs overlayfs 6.6).
                say "$d stays the host's (with a writable overlay): $whole is there"
        else
                echo "$d ${!tops[*]}"
        fi
        unset tops
done >"$init/memcr-vm/tmpfs"

# The command, for the guest's bash (the host's, through the shared root),
# or for the guest's busybox sh, where printf %q is no quoting: single quotes,
# each ' as '\''.
if [ "$arch" = x86_64 ]; then
        echo bash >"$init/memcr-vm/shell"
        q() { printf '%q' "$1"; }
else
        echo busybox >"$init/memcr-vm/shell"
        q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
fi
libdir=${MEMCR_ARM64_SYSROOT:-/var/cache/memcr-tests/arm64-sysroot}/usr/lib/aarch64-linux-gnu
{
        echo "cd -- $(q "$PWD") || exit 125"
        while IFS= read -r name; do
                echo "export $name=$(q "${!name}")"
        done < <(compgen -e | grep -E '^(PATH|MEMCR.*|CRITERION_.*|ASAN_OPTIONS|UBSAN_OPTIONS|LSAN_OPTIONS|MALLOC_PERTURB_|LANG|LC_[A-Z_]+|TZ)$' || true)
        for name in "${extra_env[@]}"; do
                if [ -n "${!name+set}" ]; then
                        echo "export $name=$(q "${!name}")"
                fi
        done
        if [ "$arch" = aarch64 ]; then
                # shellcheck disable=SC2016 # expanded in the guest
                echo 'export PATH="/run/memcr-vm/bin${PATH:+:$PATH}"'
                if [ -d "$libdir" ]; then
                        echo "export LD_LIBRARY_PATH=\"\${LD_LIBRARY_PATH:+\$LD_LIBRARY_PATH:}\"$(q "$libdir")"
                fi
        fi
        printf 'exec'
        for arg in "$@"; do
                printf ' %s' "$(q "$arg")"
        done
        printf '\n'
} >"$init/memcr-vm/command"

cat >"$init/init" <<'EOF'
#!/bin/busybox sh
# PID 1 of the guest: mount the host's root, run the command, power off.
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
marker=$(cat /memcr-vm/marker)
fail() {
        echo "memcr-vm: $*"
        echo "$marker 125"
        poweroff -f
}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
stty -F /dev/console -onlcr 2>/dev/null
for m in $(cat /modules.load); do
        insmod "/modules/$m" || fail "insmod $m failed"
done
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /lower ||
        fail "cannot mount the host's root"
mount -t tmpfs -o mode=755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
        fail "cannot mount the overlay"
r=/newroot
mount -t proc proc $r/proc
mount -t sysfs sysfs $r/sys
mount -t cgroup2 cgroup2 $r/sys/fs/cgroup 2>/dev/null
mount -t devtmpfs devtmpfs $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts $r/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $r/dev/shm
ln -sf /proc/self/fd $r/dev/fd
ln -sf /proc/self/fd/0 $r/dev/stdin
ln -sf /proc/self/fd/1 $r/dev/stdout
ln -sf /proc/self/fd/2 $r/dev/stderr
mkdir /keep
while read -r d tops; do
        n=0
        for t in $tops; do
                n=$((n + 1))
                if [ -d "$r$d/$t" ]; then mkdir /keep/$n; else touch /keep/$n; fi
                mount --bind "$r$d/$t" /keep/$n
        done
        mode=1777
        [ "$d" = /run ] && mode=755
        mount -t tmpfs -o mode=$mode tmpfs $r$d
        n=0
        for t in $tops; do
                n=$((n + 1))
                if [ -d /keep/$n ]; then mkdir "$r$d/$t"; else touch "$r$d/$t"; fi
                mount --move /keep/$n "$r$d/$t"
                rmdir /keep/$n 2>/dev/null || rm -f /keep/$n
        done
done </memcr-vm/tmpfs
mkdir -p $r/run/memcr-vm
cp /memcr-vm/command $r/run/memcr-vm/command
shell=/bin/bash
if [ "$(cat /memcr-vm/shell)" = busybox ]; then
        # The host's programs are of another processor: this busybox runs
        # the command, is /bin/sh, and its applets come first in PATH.
        cp /bin/busybox $r/run/memcr-vm/busybox
        mkdir $r/run/memcr-vm/bin
        # Links to where it runs from (/proc/self/exe): run in the new root.
        chroot $r /run/memcr-vm/busybox --install -s /run/memcr-vm/bin
        for f in $r/bin/sh $r/usr/bin/sh; do
                if [ -e $f ] || [ -L $f ]; then
                        ln -sfn /run/memcr-vm/busybox $f
                fi
        done
        shell="/run/memcr-vm/busybox sh"
fi
hostname memcr-vm
ip link set lo up
echo "memcr-vm: kernel $(uname -r)"
echo "memcr-vm: command starts" >/dev/kmsg
env -i HOME=/root TERM=dumb PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        /bin/busybox chroot $r $shell /run/memcr-vm/command </dev/null &
command=$!
# Before the host's timeout: say what is still running, with what each of
# its threads waits for, then end it.
(
        sleep "$(cat /memcr-vm/timeout)"
        touch /timed-out
        echo "memcr-vm: the command still runs after $(cat /memcr-vm/timeout)s; its processes (pid ppid: thread state wchan ...):"
        for p in /proc/[0-9]*; do
                cmd=$(tr '\0' ' ' <$p/cmdline 2>/dev/null)
                [ -n "$cmd" ] && [ "${p#/proc/}" != 1 ] && [ "${p#/proc/}" != $$ ] || continue
                ppid=$(sed 's/.*) . \([0-9]*\) .*/\1/' $p/stat 2>/dev/null)
                threads=
                for t in $p/task/*; do
                        threads="$threads ${t##*/}:$(sed 's/.*) \(.\).*/\1/' $t/stat 2>/dev/null):$(cat $t/wchan 2>/dev/null)"
                done
                echo "  ${p#/proc/} $ppid:$threads  $cmd"
        done
        kill -KILL -1
) &
watchdog=$!
wait $command
rc=$?
kill $watchdog 2>/dev/null
[ -e /timed-out ] && rc=124
if [ "$(cat /memcr-vm/dmesg)" = 1 ]; then
        echo "memcr-vm: kernel log"
        dmesg
elif [ $rc != 0 ]; then
        # What the console did not show: segmentation faults, for one.
        dmesg | sed -n '/memcr-vm: command starts/,$p' | sed '1d' >/kernel.log
        if [ -s /kernel.log ]; then
                echo "memcr-vm: kernel log while the command ran"
                cat /kernel.log
        fi
fi
echo "$marker $rc"
# The marker is last on the console: it is through when the guest stops.
sleep 1
poweroff -f
EOF
chmod 755 "$init/init"
(cd "$init" && find . -print0 | cpio --null -o -H newc --quiet) >"$work/initramfs.cpio"

# --- the machine -------------------------------------------------------------

# shellcheck disable=SC2054 # commas are qemu's
if [ "$arch" = x86_64 ]; then
        machine=(-bios qboot.rom -machine pc -accel tcg -cpu max,la57=off)
        console="console=ttyS0 edd=off"
else
        # The kernel is booted directly (no firmware); pauth-impdef: pointer
        # authentication with qemu's own, faster algorithm.
        machine=(-machine virt -accel tcg -cpu max,pauth-impdef=on)
        console="console=ttyAMA0"
fi
# shellcheck disable=SC2054 # commas are qemu's
qemu=("qemu-system-$arch"
        -nodefaults -no-user-config -display none -no-reboot
        "${machine[@]}" -smp "$cpus" -m "$memory"
        -kernel "$kdir/vmlinuz" -initrd "$work/initramfs.cpio"
        -append "$console panic=-1 loglevel=4 mitigations=off rdinit=/init"
        -chardev stdio,id=console,signal=off -serial chardev:console
        -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap
        -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot)

log=$work/console.log
mkfifo "$work/console"
say "$(cat "$kdir/package"), $cpus CPUs, $memory of memory, TCG"
start=$(date +%s)
# Both in the background: wait returns at once when this script is signalled,
# and the trap stops qemu (timeout passes TERM on to it).
timeout -k 10 "$timeout_s" "${qemu[@]}" </dev/null >"$work/console" 2>"$work/qemu.err" &
qemu_pid=$!
{ sed -u 's/\r$//' | tee "$log" | grep --line-buffered -v -e "^$marker " -e '^\[ *[0-9.]*\] reboot: Power down$'; } <"$work/console" &
reader_pid=$!
qemu_status=0
wait "$qemu_pid" || qemu_status=$?
qemu_pid=
wait "$reader_pid" || true
elapsed=$(($(date +%s) - start))
rc=$(sed -n "s/^$marker \([0-9]*\)$/\1/p" "$log" | tail -n 1)
if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then
        say "timed out after ${timeout_s}s"
        exit 124
fi
if [ -z "$rc" ]; then
        cat "$work/qemu.err" >&2
        say "the guest ended (qemu status $qemu_status) without the command's status, after ${elapsed}s"
        exit 125
fi
if [ "$rc" = 124 ] && grep -q '^memcr-vm: the command still runs after' "$log"; then
        say "timed out after ${elapsed}s"
        exit 124
fi
say "exit status $rc after ${elapsed}s"
exit "$rc"
