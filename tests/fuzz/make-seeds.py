#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

The device seeds are programs in the op language of fuzz_machine.h that
bring each device up the way a driver does and make it do some work; the
other targets' seeds are files (qcow2 images made by qemu-img, vm.ini
texts, control-socket lines).  Run it from anywhere:

    python3 tests/fuzz/make-seeds.py          # rewrites every corpus
    python3 tests/fuzz/make-seeds.py vga      # one target

The qcow2, vdi, vmdk, vhd and vhdx seeds need qemu-img and qemu-io
(Debian's qemu-utils)."""

import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# --- the op language (fuzz_machine.h) ------------------------------------

READ, WRITE, RAM, LOOP, CFG_READ, CFG_WRITE, TARGET, RESET = range(8)
SIZE = {1: 0, 2: 1, 4: 2, 8: 3}


class Prog:
    """A program for one device target.  windows: (length, is_pio) per
    window index, as the target registers them."""

    def __init__(self, windows):
        self.windows = windows
        self.b = bytearray()

    def op(self, kind, size=1, arg=0):
        self.b.append(kind | SIZE[size] << 3 | arg << 5)

    def _off(self, win, off):
        n = self.windows[win][0]
        nb = 1 if n <= 0x100 else 2 if n <= 0x10000 else 3
        self.b += off.to_bytes(nb, "little")

    def rd(self, win, off, size=1):
        self.op(READ, size)
        self.b.append(win)
        self._off(win, off)

    def wr(self, win, off, size, val):
        self.op(WRITE, size)
        self.b.append(win)
        self._off(win, off)
        self.b += (val & ((1 << (8 * size)) - 1)).to_bytes(size, "little")

    def ram(self, addr, data):
        data = bytes(data)
        while data:
            chunk, data = data[:256], data[256:]
            self.op(RAM)
            self.b += addr.to_bytes(2, "little")
            self.b.append(len(chunk) & 0xff)
            self.b += chunk
            addr += len(chunk)

    def loop(self, n=1):
        while n > 0:
            k = min(n, 8)
            self.op(LOOP, arg=k - 1)
            n -= k

    def cfg_rd(self, off, size=4):
        self.op(CFG_READ, size)
        self.b.append(off)

    def cfg_wr(self, off, size, val):
        self.op(CFG_WRITE, size)
        self.b.append(off)
        self.b += val.to_bytes(size, "little")

    def target(self, arg, extra=b""):
        self.op(TARGET, arg=arg)
        self.b += bytes(extra)

    def reset(self):
        self.op(RESET)

    def bytes(self):
        return bytes(self.b)


def le16(v):
    return struct.pack("<H", v)


def le32(v):
    return struct.pack("<I", v)


def le64(v):
    return struct.pack("<Q", v)


# --- frames ---------------------------------------------------------------

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


GUEST_MAC = bytes.fromhex("525400123456")
GW_MAC = bytes.fromhex("525400123502")
BCAST = b"\xff" * 6


def arp_request(src_mac, src_ip, dst_ip):
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src_mac + bytes(src_ip) + b"\0" * 6 + bytes(dst_ip)
    return (BCAST + src_mac + b"\x08\x06" + arp).ljust(60, b"\0")


def ipv4(proto, src, dst, payload, ident=1):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0,
                      bytes(src), bytes(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def udp_frame(dst_mac, src_mac, src, dst, sport, dport, data):
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    pseudo = bytes(src) + bytes(dst) + struct.pack("!BBH", 0, 17, len(u))
    u = u[:6] + struct.pack("!H", csum(pseudo + u) or 0xffff) + u[8:]
    return dst_mac + src_mac + b"\x08\x00" + ipv4(17, src, dst, u)


def tcp_frame(dst_mac, src_mac, src, dst, payload, partial_csum=False):
    """A TCP segment; with partial_csum its checksum field holds only the
    pseudo-header sum, as a driver leaves it for checksum offload."""
    t = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 5 << 4, 0x18, 65535, 0, 0) + payload
    pseudo = bytes(src) + bytes(dst) + struct.pack("!BBH", 0, 6, len(t))
    if partial_csum:
        c = ~csum(pseudo) & 0xffff
    else:
        c = csum(pseudo + t)
    t = t[:16] + struct.pack("!H", c) + t[18:]
    return dst_mac + src_mac + b"\x08\x00" + ipv4(6, src, dst, t)


GUEST_IP = (10, 0, 2, 15)
GW_IP = (10, 0, 2, 2)

# --- virtio (virtio 1.2, 4.1 and 2.7) -------------------------------------

VIRTIO_WINDOWS = [(0x4000, False), (0x1000, False)]
CC_DFSELECT, CC_DF, CC_GFSELECT, CC_GF, CC_MSIX, CC_NUMQ, CC_STATUS = 0x00, 0x04, 0x08, 0x0c, 0x10, 0x12, 0x14
CC_QSELECT, CC_QSIZE, CC_QMSIX, CC_QENABLE, CC_QNOFF = 0x16, 0x18, 0x1a, 0x1c, 0x1e
CC_QDESC, CC_QAVAIL, CC_QUSED = 0x20, 0x28, 0x30
ISR, DEVCFG, NOTIFY = 0x1000, 0x2000, 0x3000
F_INDIRECT, F_EVENT_IDX = 1 << 28, 1 << 29
NO_VECTOR = 0xffff


class VQ:
    """A split virtqueue laid out in guest RAM by a driver."""

    def __init__(self, p, q, size, base):
        self.p, self.q, self.size = p, q, size
        self.desc = base
        self.avail = base + 16 * size
        self.used = (self.avail + 6 + 2 * size + 3) & ~3
        self.end = self.used + 6 + 8 * size
        self.next = 0
        self.avail_idx = 0

    def setup(self, vector=NO_VECTOR):
        p = self.p
        p.wr(0, CC_QSELECT, 2, self.q)
        p.rd(0, CC_QSIZE, 2)
        p.wr(0, CC_QSIZE, 2, self.size)
        p.wr(0, CC_QMSIX, 2, vector)
        p.wr(0, CC_QDESC, 4, self.desc)
        p.wr(0, CC_QDESC + 4, 4, 0)
        p.wr(0, CC_QAVAIL, 4, self.avail)
        p.wr(0, CC_QAVAIL + 4, 4, 0)
        p.wr(0, CC_QUSED, 4, self.used)
        p.wr(0, CC_QUSED + 4, 4, 0)
        p.rd(0, CC_QNOFF, 2)
        p.wr(0, CC_QENABLE, 2, 1)

    def post(self, bufs, indirect_at=None):
        """bufs: (addr, len, device_writes).  Returns the head."""
        if indirect_at is not None:
            table = b""
            for i, (a, n, w) in enumerate(bufs):
                last = i == len(bufs) - 1
                table += le64(a) + le32(n) + le16((0 if last else 1) | (2 if w else 0)) + le16(i + 1 if not last else 0)
            self.p.ram(indirect_at, table)
            bufs = [(indirect_at, len(table), None)]
        head = self.next
        for i, (a, n, w) in enumerate(bufs):
            idx = self.next
            self.next = (self.next + 1) % self.size
            last = i == len(bufs) - 1
            flags = (0 if last else 1) | (2 if w else 0) | (4 if w is None else 0)
            self.p.ram(self.desc + 16 * idx, le64(a) + le32(n) + le16(flags) + le16(self.next if not last else 0))
        self.p.ram(self.avail + 4 + 2 * (self.avail_idx % self.size), le16(head))
        self.avail_idx = (self.avail_idx + 1) & 0xffff
        self.p.ram(self.avail + 2, le16(self.avail_idx))
        return head

    def notify(self):
        self.p.wr(0, NOTIFY + 4 * self.q, 2, self.q)


def virtio_up(p, features, queues, msix=False):
    """Driver initialisation (3.1.1): reset, ACKNOWLEDGE, DRIVER, features,
    FEATURES_OK, queues, DRIVER_OK."""
    p.wr(0, CC_STATUS, 1, 0)
    p.rd(0, CC_STATUS, 1)
    p.wr(0, CC_STATUS, 1, 1)
    p.wr(0, CC_STATUS, 1, 3)
    for sel in (0, 1):
        p.wr(0, CC_DFSELECT, 4, sel)
        p.rd(0, CC_DF, 4)
    features |= 1 << 32
    for sel in (0, 1):
        p.wr(0, CC_GFSELECT, 4, sel)
        p.wr(0, CC_GF, 4, (features >> (32 * sel)) & 0xffffffff)
    p.wr(0, CC_STATUS, 1, 0xb)
    p.rd(0, CC_STATUS, 1)
    p.rd(0, CC_NUMQ, 2)
    if msix:
        # MSI-X table in BAR1: vector v at 16 * v; enable through the
        # capability's message control (found by walking the list).
        for v in range(len(queues) + 1):
            p.wr(1, 16 * v, 4, 0xfee00000)
            p.wr(1, 16 * v + 4, 4, 0)
            p.wr(1, 16 * v + 8, 4, 0x4040 + v)
            p.wr(1, 16 * v + 12, 4, 0)
        p.cfg_wr(MSIX_CAP + 2, 2, 0x8000)
        p.wr(0, CC_MSIX, 2, 0)
    else:
        p.wr(0, CC_MSIX, 2, NO_VECTOR)
    for i, vq in enumerate(queues):
        vq.setup(i + 1 if msix else NO_VECTOR)
    p.wr(0, CC_STATUS, 1, 0xf)
    p.rd(0, CC_STATUS, 1)


# Capabilities of a virtio-pci device from 0x40 (devices/virtio_pci.c adds
# them in this order): MSI-X (12 bytes), common (16), ISR (16), device
# configuration (16, only with one), notify (20), PCI_CFG (20).
MSIX_CAP = 0x40
PCI_CFG_CAP_RNG = 0x80       # virtio-rng has no device configuration


def virtio_caps(p):
    p.cfg_rd(0x00)
    p.cfg_rd(0x06, 2)
    p.cfg_rd(0x34, 1)
    off = 0x40
    for _ in range(7):
        p.cfg_rd(off, 4)
        p.cfg_rd(off + 4, 4)
        p.cfg_rd(off + 8, 4)
        p.cfg_rd(off + 12, 4)
        off += 0x10


BLK_HDR, BLK_DATA, BLK_STATUS = 0x8000, 0x9000, 0xa000


def blk_request(p, vq, rtype, sector, data_len, device_writes, data=None, segs=1, indirect_at=None):
    p.ram(BLK_HDR, le32(rtype) + le32(0) + le64(sector))
    if data is not None:
        p.ram(BLK_DATA, data)
    bufs = [(BLK_HDR, 16, False)]
    if data_len:
        step = data_len // segs
        for s in range(segs):
            bufs.append((BLK_DATA + s * step, step, device_writes))
    bufs.append((BLK_STATUS, 1, True))
    vq.post(bufs, indirect_at)
    vq.notify()
    p.loop(2)
    p.rd(0, ISR, 1)


def seeds_virtio_blk():
    out = {}
    F_SEG_MAX, F_BLK_SIZE, F_FLUSH, F_DISCARD = 1 << 2, 1 << 6, 1 << 9, 1 << 13

    p = Prog(VIRTIO_WINDOWS)
    vq = VQ(p, 0, 16, 0x1000)
    virtio_up(p, F_SEG_MAX | F_BLK_SIZE | F_FLUSH, [vq])
    for off in range(0, 0x3c, 4):
        p.rd(0, DEVCFG + off, 4)
    blk_request(p, vq, 0, 0, 512, True)
    out["read-sector0"] = p.bytes()

    p = Prog(VIRTIO_WINDOWS)
    vq = VQ(p, 0, 16, 0x1000)
    virtio_up(p, F_SEG_MAX | F_FLUSH, [vq])
    blk_request(p, vq, 1, 8, 1024, False, bytes(range(256)) * 4, segs=2)
    blk_request(p, vq, 0, 8, 1024, True, segs=4)
    blk_request(p, vq, 4, 0, 0, False)
    out["write-read-flush"] = p.bytes()

    p = Prog(VIRTIO_WINDOWS)
    vq = VQ(p, 0, 16, 0x1000)
    virtio_up(p, F_DISCARD | F_FLUSH, [vq])
    blk_request(p, vq, 8, 0, 20, True)                                   # GET_ID
    blk_request(p, vq, 11, 0, 16, False, le64(8) + le32(8) + le32(0))    # DISCARD
    blk_request(p, vq, 1, 2047, 512, False, b"\x55" * 512)               # the last sector
    blk_request(p, vq, 0, 2048, 512, True)                               # past the end
    out["id-discard-edges"] = p.bytes()

    p = Prog(VIRTIO_WINDOWS)
    vq = VQ(p, 0, 16, 0x1000)
    virtio_caps(p)
    virtio_up(p, F_INDIRECT | F_EVENT_IDX | F_FLUSH, [vq], msix=True)
    blk_request(p, vq, 1, 1, 512, False, b"QFI\xfb" * 128, indirect_at=0xb000)
    blk_request(p, vq, 0, 1, 512, True, indirect_at=0xb000)
    p.reset()
    p.loop()
    out["msix-indirect-eventidx"] = p.bytes()
    return out


def net_hdr(flags=0, gso_type=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0):
    return struct.pack("<BBHHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, 0)


def seeds_virtio_net():
    out = {}
    F_CSUM, F_GUEST_CSUM, F_MAC, F_GUEST_TSO4, F_HOST_TSO4 = 1, 2, 1 << 5, 1 << 7, 1 << 11
    F_MRG_RXBUF, F_STATUS = 1 << 15, 1 << 16
    RXBUF, TXBUF = 0x4000, 0xc000

    def up(p, features, msix=False):
        rx, tx = VQ(p, 0, 16, 0x1000), VQ(p, 1, 16, 0x2000)
        virtio_up(p, features, [rx, tx], msix)
        return rx, tx

    def post_rx(rx, n, size):
        for i in range(n):
            rx.post([(RXBUF + i * size, size, True)])
        rx.notify()

    def send(p, tx, hdr, frame):
        p.ram(TXBUF, hdr + frame)
        tx.post([(TXBUF, len(hdr), False), (TXBUF + len(hdr), len(frame), False)])
        tx.notify()
        p.loop(2)
        p.rd(0, ISR, 1)

    p = Prog(VIRTIO_WINDOWS)
    rx, tx = up(p, F_MAC | F_STATUS)
    for off in range(0, 0x14, 2):
        p.rd(0, DEVCFG + off, 2)
    post_rx(rx, 4, 1526)
    send(p, tx, net_hdr(), arp_request(GUEST_MAC, GUEST_IP, GW_IP))
    p.loop(2)
    out["arp-echo"] = p.bytes()

    p = Prog(VIRTIO_WINDOWS)
    rx, tx = up(p, F_MAC | F_STATUS | F_MRG_RXBUF | F_GUEST_CSUM)
    post_rx(rx, 8, 512)
    frame = udp_frame(GUEST_MAC, GW_MAC, GW_IP, GUEST_IP, 53, 4000, bytes(range(256)) * 4)
    p.target(0, le16(len(frame)) + frame)
    p.loop(2)
    p.target(6)
    p.rd(0, DEVCFG + 6, 2)
    p.target(7)
    p.loop()
    out["mergeable-rx-link"] = p.bytes()

    p = Prog(VIRTIO_WINDOWS)
    rx, tx = up(p, F_CSUM | F_HOST_TSO4 | F_GUEST_CSUM | F_MRG_RXBUF, msix=True)
    post_rx(rx, 8, 2048)
    seg = tcp_frame(GW_MAC, GUEST_MAC, GUEST_IP, GW_IP, bytes(range(256)) * 12, partial_csum=True)
    send(p, tx, net_hdr(1, 1, 54, 1000, 34, 16), seg)           # NEEDS_CSUM, TSO4, MSS 1000
    small = tcp_frame(GW_MAC, GUEST_MAC, GUEST_IP, GW_IP, b"hello", partial_csum=True)
    send(p, tx, net_hdr(1, 0, 0, 0, 34, 16), small)
    p.loop(3)
    out["tso-csum-msix"] = p.bytes()
    return out


def seeds_virtio_pci():
    out = {}
    p = Prog(VIRTIO_WINDOWS)
    virtio_caps(p)
    for off in range(0, 0x40, 4):
        p.rd(0, off, 4)
    out["config-space"] = p.bytes()

    p = Prog(VIRTIO_WINDOWS)
    vq = VQ(p, 0, 8, 0x1000)
    virtio_up(p, F_INDIRECT | F_EVENT_IDX, [vq], msix=True)
    vq.post([(0x8000, 64, True)])
    vq.post([(0x8100, 16, True), (0x8200, 16, True)], indirect_at=0x9000)
    vq.notify()
    p.loop(2)
    p.rd(1, 0x800, 8)
    p.cfg_wr(MSIX_CAP + 2, 2, 0xc000)      # function mask
    vq.post([(0x8000, 32, True)])
    vq.notify()
    p.loop()
    p.rd(1, 0x800, 8)
    p.cfg_wr(MSIX_CAP + 2, 2, 0x8000)
    p.wr(0, CC_STATUS, 1, 0)
    p.rd(0, CC_STATUS, 1)
    out["rng-msix"] = p.bytes()

    # The PCI configuration access capability: BAR4 through config cycles.
    p = Prog(VIRTIO_WINDOWS)
    c = PCI_CFG_CAP_RNG
    for off, size, val in ((CC_STATUS, 1, 1), (CC_STATUS, 1, 3), (CC_NUMQ, 2, None), (CC_DF, 4, None)):
        p.cfg_wr(c + 4, 1, 4)              # bar
        p.cfg_wr(c + 8, 4, off)            # offset
        p.cfg_wr(c + 12, 4, size)          # length
        if val is None:
            p.cfg_rd(c + 16, size)
        else:
            p.cfg_wr(c + 16, size, val)
    p.cfg_wr(c + 4, 1, 1)
    p.cfg_wr(c + 8, 4, 12)
    p.cfg_wr(c + 12, 4, 4)
    p.cfg_rd(c + 16, 4)
    vq = VQ(p, 0, 4, 0x1000)
    virtio_up(p, 0, [vq])
    vq.post([(0x8000, 8, True)])
    vq.notify()
    p.loop()
    p.rd(0, ISR, 1)
    out["pci-cfg-window"] = p.bytes()
    return out


def seeds_virtqueue():
    """Header: size byte, features byte, desc/avail/used addresses (3 bytes
    each); ops: 0 RAM, 1 pop, 2 push, 3 should-interrupt, 4 has-work,
    5 reset, 6 iovec helpers, 7 broken."""
    out = {}

    def header(size_log2, feat, desc, avail, used):
        return bytes([size_log2, feat]) + desc.to_bytes(3, "little") + avail.to_bytes(3, "little") + used.to_bytes(3, "little")

    def ram(addr, data):
        b = b""
        data = bytes(data)
        while data:
            chunk, data = data[:256], data[256:]
            b += bytes([0]) + le16(addr) + bytes([len(chunk) & 0xff]) + chunk
            addr += len(chunk)
        return b

    def desc(i, addr, n, flags, nxt, base=0x1000):
        return ram(base + 16 * i, le64(addr) + le32(n) + le16(flags) + le16(nxt))

    size, d, a, u = 8, 0x1000, 0x1080, 0x1100
    b = header(3, 0, d, a, u)
    b += desc(0, 0x4000, 100, 1, 1) + desc(1, 0x5000, 200, 2, 0)
    b += ram(a, le16(0) + le16(1) + le16(0))
    b += bytes([4, 1, 6, 0]) + le16(10) + le16(150) + bytes([3])
    b += bytes([2, 0]) + le32(150) + bytes([3])
    out["pop-push"] = b

    b = header(3, 3, d, a, u)
    table = b""
    for i in range(4):
        table += le64(0x6000 + 0x100 * i) + le32(64) + le16(1 | (2 if i >= 2 else 0)) + le16(i + 1)
    table = table[:-4] + le16(2) + le16(0)
    b += ram(0x3000, table)
    b += desc(0, 0x3000, len(table), 4, 0)
    b += desc(1, 0x4000, 8, 0, 0)
    b += ram(a, le16(0) + le16(2) + le16(0) + le16(1) + le16(0) * 8 + le16(1))
    b += bytes([1, 1, 4, 2, 1]) + le32(64) + bytes([3, 2, 0]) + le32(0) + bytes([3])
    b += bytes([5, 1, 7, 1, 5, 4])
    out["indirect-eventidx"] = b

    b = header(1, 0, d, a, u)
    b += desc(0, 0x4000, 16, 1, 1) + desc(1, 0x4100, 16, 1, 0)     # a loop
    b += ram(a, le16(0) + le16(1) + le16(0))
    b += bytes([1, 5, 1])
    out["chain-loop"] = b
    return out


# --- AHCI, ATA, ATAPI ------------------------------------------------------

AHCI_WINDOWS = [(0x1000, False)]
GHC, HBA_IS = 0x04, 0x08
PX_CLB, PX_FB, PX_IS, PX_IE, PX_CMD, PX_TFD, PX_SIG, PX_SSTS, PX_SERR, PX_SACT, PX_CI = \
    0x00, 0x08, 0x10, 0x14, 0x18, 0x20, 0x24, 0x28, 0x30, 0x34, 0x38


def px(port, reg):
    return 0x100 + 0x80 * port + reg


def ahci_port_up(p, port):
    clb = 0x1000 + 0x800 * port
    p.wr(0, px(port, PX_CMD), 4, 0)
    p.wr(0, px(port, PX_CLB), 4, clb)
    p.wr(0, px(port, PX_CLB) + 4, 4, 0)
    p.wr(0, px(port, PX_FB), 4, clb + 0x400)
    p.wr(0, px(port, PX_FB) + 4, 4, 0)
    p.wr(0, px(port, PX_SERR), 4, 0xffffffff)
    p.wr(0, px(port, PX_IS), 4, 0xffffffff)
    p.wr(0, px(port, PX_IE), 4, 0xffffffff)
    p.wr(0, px(port, PX_CMD), 4, 0x10)          # FRE
    p.wr(0, px(port, PX_CMD), 4, 0x11)          # FRE | ST
    p.rd(0, px(port, PX_SSTS), 4)
    p.rd(0, px(port, PX_SIG), 4)
    p.rd(0, px(port, PX_TFD), 4)


def ahci_cmd(p, port, slot, command, lba=0, count=0, feature=0, data_len=0, write=False,
             packet=None, data=None, ncq_tag=None, prds=1, recover=False):
    clb = 0x1000 + 0x800 * port
    ctba = 0x4000 + 0x1000 * port + 0x100 * slot
    buf = 0x8000 + 0x2000 * port
    fis = bytearray(20)
    fis[0], fis[1], fis[2] = 0x27, 0x80, command
    if ncq_tag is not None:
        fis[3], fis[11] = count & 0xff, count >> 8      # NCQ: the count is in the feature fields
        fis[12] = ncq_tag << 3
        fis[7] = 0x40
    else:
        fis[3], fis[11] = feature & 0xff, feature >> 8
        fis[12], fis[13] = count & 0xff, count >> 8
        fis[7] = 0x40 if command in (0x25, 0x35, 0x24, 0x34, 0x42, 0x2f, 0xc8, 0xca, 0x20, 0x30, 0x40) else 0
    fis[4], fis[5], fis[6] = lba & 0xff, (lba >> 8) & 0xff, (lba >> 16) & 0xff
    fis[8], fis[9], fis[10] = (lba >> 24) & 0xff, (lba >> 32) & 0xff, (lba >> 40) & 0xff
    table = bytes(fis).ljust(0x40, b"\0")
    table += (packet or b"").ljust(0x10, b"\0").ljust(0x40, b"\0")
    prdt = b""
    if data_len:
        step = data_len // prds
        for i in range(prds):
            prdt += le32(buf + i * step) + le32(0) + le32(0) + le32((step - 1) | (1 << 31 if i == prds - 1 else 0))
    p.ram(ctba, table + prdt)
    if data is not None:
        p.ram(buf, data)
    dw0 = 5 | (0x20 if packet else 0) | (0x40 if write else 0) | ((prds if data_len else 0) << 16)
    p.ram(clb + 32 * slot, le32(dw0) + le32(0) + le32(ctba) + le32(0) + bytes(16))
    if ncq_tag is not None:
        p.wr(0, px(port, PX_SACT), 4, 1 << slot)
    p.wr(0, px(port, PX_CI), 4, 1 << slot)
    p.loop(2)
    p.rd(0, px(port, PX_IS), 4)
    p.rd(0, px(port, PX_TFD), 4)
    p.rd(0, px(port, PX_CI), 4)
    p.wr(0, px(port, PX_IS), 4, 0xffffffff)
    if recover:
        # After a task file error the port stops: ST off, errors cleared, ST on.
        p.wr(0, px(port, PX_CMD), 4, 0x10)
        p.rd(0, px(port, PX_CMD), 4)
        p.wr(0, px(port, PX_SERR), 4, 0xffffffff)
        p.wr(0, px(port, PX_CMD), 4, 0x11)


def ahci_hba_up(p):
    p.rd(0, 0x00, 4)
    p.wr(0, GHC, 4, 1 << 31)
    p.wr(0, GHC, 4, (1 << 31) | 2)
    p.rd(0, 0x0c, 4)


def seeds_ahci():
    out = {}
    p = Prog(AHCI_WINDOWS)
    ahci_hba_up(p)
    ahci_port_up(p, 0)
    ahci_cmd(p, 0, 0, 0xec, data_len=512)                                       # IDENTIFY
    ahci_cmd(p, 0, 1, 0x35, lba=1, count=2, data_len=1024, write=True, data=b"\xaa" * 1024, prds=2)
    ahci_cmd(p, 0, 2, 0x25, lba=1, count=2, data_len=1024)                      # READ DMA EXT
    ahci_cmd(p, 0, 3, 0xea)                                                     # FLUSH CACHE EXT
    ahci_cmd(p, 0, 4, 0xef, feature=0x03, count=0x45)                           # SET FEATURES: UDMA5
    out["ata-identify-rw"] = p.bytes()

    p = Prog(AHCI_WINDOWS)
    ahci_hba_up(p)
    ahci_port_up(p, 0)
    ahci_cmd(p, 0, 0, 0x61, lba=4, count=1, ncq_tag=0, data_len=512, write=True, data=b"\x5a" * 512)
    ahci_cmd(p, 0, 5, 0x60, lba=4, count=1, ncq_tag=5, data_len=512)
    ahci_cmd(p, 0, 6, 0x60, lba=2048, count=1, ncq_tag=6, data_len=512, recover=True)   # past the end
    ahci_cmd(p, 0, 7, 0x2f, lba=0x10, count=1, data_len=512)                    # READ LOG EXT 10h
    ahci_cmd(p, 0, 8, 0x27)                                                     # READ NATIVE MAX EXT
    ahci_cmd(p, 0, 9, 0xc8, lba=0, count=1, data_len=512)                       # READ DMA (28-bit)
    out["ata-ncq-errors"] = p.bytes()

    p = Prog(AHCI_WINDOWS)
    ahci_hba_up(p)
    ahci_port_up(p, 1)
    ahci_cmd(p, 1, 0, 0xa1, data_len=512)                                       # IDENTIFY PACKET
    for cdb, n in ((b"\x00", 0), (b"\x03\0\0\0\x12", 18), (b"\x12\0\0\0\x24", 36),
                   (b"\x25", 8), (b"\x28\0\0\0\0\x10\0\0\x01", 2048),
                   (b"\x43\0\0\0\0\0\0\x03\x24", 804), (b"\x46\x02\0\0\0\0\0\0\x40", 64),
                   (b"\x4a\x01\0\0\x10\0\0\0\x08", 8), (b"\x5a\0\x2a\0\0\0\0\0\x40", 64),
                   (b"\xbe\0\0\0\0\0\0\0\x01\x10", 2048), (b"\x1e\0\0\0\x01", 0),
                   (b"\x1b\0\0\0\x02", 0), (b"\x1e\0\0\0\x00", 0), (b"\x1b\0\0\0\x02", 0),
                   (b"\x00", 0), (b"\x1b\0\0\0\x03", 0)):
        ahci_cmd(p, 1, 1, 0xa0, feature=1 if n else 0, packet=cdb, data_len=n if n else 0, recover=True)
    out["atapi-mmc"] = p.bytes()

    p = Prog(AHCI_WINDOWS)
    ahci_hba_up(p)
    ahci_port_up(p, 1)
    ahci_port_up(p, 2)
    ahci_cmd(p, 1, 0, 0xa0, feature=0, packet=b"\x00", recover=True)             # unit attention
    ahci_cmd(p, 1, 0, 0xa0, feature=0, packet=b"\x1e\0\0\0\x01", recover=True)  # lock the tray
    p.target(0)                                                                 # eject: refused
    p.target(1)                                                                 # forced
    ahci_cmd(p, 1, 0, 0xa0, feature=0, packet=b"\x00", recover=True)             # TEST UNIT READY
    ahci_cmd(p, 1, 0, 0xa0, feature=1, packet=b"\x03\0\0\0\x12", data_len=18, recover=True)
    p.target(2)
    ahci_cmd(p, 1, 0, 0xa0, feature=1, packet=b"\x4a\x01\0\0\x10\0\0\0\x08", data_len=8, recover=True)
    ahci_cmd(p, 1, 0, 0xa0, feature=1, packet=b"\x28\0\0\0\0\x10\0\0\x01", data_len=2048, recover=True)
    p.target(4)
    ahci_cmd(p, 2, 0, 0xa0, feature=1, packet=b"\x25", data_len=8, recover=True)
    ahci_cmd(p, 2, 0, 0xa0, feature=1, packet=b"\x25", data_len=8, recover=True)
    out["atapi-media"] = p.bytes()
    return out


# --- e1000 ------------------------------------------------------------------

E1K_WINDOWS = [(0x20000, False), (0x40, True)]


def e1k_up(p, rx_bufs=4, buf_size=2048):
    p.wr(0, 0x0000, 4, 1 << 26)             # CTRL.RST
    p.rd(0, 0x0008, 4)
    p.wr(0, 0x0000, 4, 1 << 6)              # SLU
    p.wr(0, 0x0014, 4, 1)                   # EERD word 0
    p.rd(0, 0x0014, 4)
    p.wr(0, 0x0020, 4, (2 << 26) | (1 << 21) | (1 << 16))   # MDIC read PHY reg 1
    p.rd(0, 0x0020, 4)
    p.wr(0, 0x00d0, 4, 0x9f)                # IMS
    # receive ring: 8 descriptors at 0x1000, buffers from 0x4000
    p.wr(0, 0x2800, 4, 0x1000)
    p.wr(0, 0x2804, 4, 0)
    p.wr(0, 0x2808, 4, 8 * 16)
    p.wr(0, 0x2810, 4, 0)
    for i in range(8):
        p.ram(0x1000 + 16 * i, le64(0x4000 + buf_size * i) + bytes(8))
    p.wr(0, 0x2818, 4, rx_bufs)
    p.wr(0, 0x0100, 4, (1 << 1) | (1 << 15) | (1 << 26))   # RCTL: EN, BAM, SECRC
    # transmit ring: 8 descriptors at 0x2000
    p.wr(0, 0x3800, 4, 0x2000)
    p.wr(0, 0x3804, 4, 0)
    p.wr(0, 0x3808, 4, 8 * 16)
    p.wr(0, 0x3810, 4, 0)
    p.wr(0, 0x3818, 4, 0)
    p.wr(0, 0x0400, 4, (1 << 1) | (1 << 3))                 # TCTL: EN, PSP


class E1kTx:
    def __init__(self, p):
        self.p, self.tail = p, 0

    def desc(self, raw):
        self.p.ram(0x2000 + 16 * self.tail, raw)
        self.tail = (self.tail + 1) % 8

    def legacy(self, addr, data, cmd=0x0b, cso=0, css=0):
        self.p.ram(addr, data)
        self.desc(le64(addr) + le16(len(data)) + bytes([cso, cmd, 0, css]) + le16(0))

    def context(self, ipcss, ipcso, ipcse, tucss, tucso, tucse, paylen, tcp, tse, mss, hdrlen):
        cmd = 0x20 | 0x08 | (0x01 if tcp else 0) | (0x02 if True else 0) | (0x04 if tse else 0)
        self.desc(bytes([ipcss, ipcso]) + le16(ipcse) + bytes([tucss, tucso]) + le16(tucse) +
                  le32(paylen | cmd << 24 | 0 << 20) + bytes([0, hdrlen]) + le16(mss))

    def data(self, addr, data, popts, tse=False, eop=True):
        self.p.ram(addr, data)
        dcmd = 0x20 | 0x08 | (0x01 if eop else 0) | (0x02) | (0x04 if tse else 0)
        self.desc(le64(addr) + le32(len(data) | 1 << 20 | dcmd << 24) + bytes([0, popts]) + le16(0))

    def kick(self):
        self.p.wr(0, 0x3818, 4, self.tail)
        self.p.loop(2)
        self.p.rd(0, 0x00c0, 4)            # ICR


def seeds_e1000():
    out = {}
    p = Prog(E1K_WINDOWS)
    e1k_up(p)
    tx = E1kTx(p)
    tx.legacy(0x8000, arp_request(GUEST_MAC, GUEST_IP, GW_IP))
    tx.kick()
    p.rd(0, 0x2810, 4)
    p.rd(0, 0x4074, 4)
    out["arp-echo"] = p.bytes()

    p = Prog(E1K_WINDOWS)
    e1k_up(p)
    frame = udp_frame(bytes.fromhex("525400123457"), GW_MAC, GW_IP, GUEST_IP, 53, 4000, b"x" * 300)
    p.target(0, le16(len(frame)) + frame)
    p.target(1, le16(len(frame)) + frame)            # not for us
    p.target(0, le16(3000) + frame)                  # too long
    p.loop()
    p.rd(0, 0x00c0, 4)
    p.target(6)
    p.rd(0, 0x0008, 4)
    p.target(7)
    p.rd(0, 0x00c0, 4)
    # the I/O window: IOADDR, then IODATA
    p.wr(1, 0, 4, 0x0008)
    p.rd(1, 4, 4)
    p.wr(1, 0, 4, 0x5400)
    p.wr(1, 4, 4, 0x12005452)
    out["rx-filters-io"] = p.bytes()

    p = Prog(E1K_WINDOWS)
    e1k_up(p)
    tx = E1kTx(p)
    seg = tcp_frame(GW_MAC, GUEST_MAC, GUEST_IP, GW_IP, bytes(range(256)) * 10, partial_csum=True)
    hdr, payload = seg[:54], seg[54:]
    tx.context(14, 24, 33, 34, 50, 0, len(payload), True, True, 1000, 54)
    tx.data(0x8000, hdr, 0x03, tse=True, eop=False)
    tx.data(0x9000, payload, 0x03, tse=True)
    small = tcp_frame(GW_MAC, GUEST_MAC, GUEST_IP, GW_IP, b"hi there", partial_csum=True)
    tx.context(14, 24, 33, 34, 50, 0, 0, True, False, 0, 0)
    tx.data(0xb000, small, 0x03)
    tx.kick()
    p.loop(2)
    out["tso-checksum"] = p.bytes()

    p = Prog(E1K_WINDOWS)
    # EEPROM through EECD bit-banging: READ opcode 110b, address 0
    p.rd(0, 0x0010, 4)
    p.wr(0, 0x0010, 4, 0x40)
    p.rd(0, 0x0010, 4)
    bits = [1, 1, 0] + [0] * 6
    for b in bits:
        di = 4 if b else 0
        p.wr(0, 0x0010, 4, 0x40 | 2 | di)
        p.wr(0, 0x0010, 4, 0x40 | 2 | di | 1)
    for _ in range(16):
        p.wr(0, 0x0010, 4, 0x40 | 2)
        p.wr(0, 0x0010, 4, 0x40 | 2 | 1)
        p.rd(0, 0x0010, 4)
    p.wr(0, 0x0010, 4, 0)
    for reg in range(0, 8):
        p.wr(0, 0x0020, 4, (2 << 26) | (1 << 21) | (reg << 16))
        p.rd(0, 0x0020, 4)
    p.wr(0, 0x0020, 4, (1 << 26) | (1 << 21) | (0 << 16) | 0x8000)     # PHY reset
    for off in range(0x4000, 0x4100, 4):
        p.rd(0, off, 4)
    out["eeprom-phy-stats"] = p.bytes()
    return out


# --- VGA ----------------------------------------------------------------------

VGA_WINDOWS = [(0x30, True), (3, True), (0x20000, False), (16 << 20, False), (0x1000, False)]
MODE3 = (0x67, [0x03, 0x00, 0x03, 0x00, 0x02],
         [0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00,
          0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff],
         [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff],
         [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e,
          0x3f, 0x0c, 0x00, 0x0f, 0x08, 0x00])
MODE12 = (0xe3, [0x03, 0x01, 0x0f, 0x00, 0x06],
          [0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0x0b, 0x3e, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
           0x00, 0xea, 0x8c, 0xdf, 0x28, 0x00, 0xe7, 0x04, 0xe3, 0xff],
          [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0f, 0xff],
          [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e,
           0x3f, 0x01, 0x00, 0x0f, 0x00, 0x00])
MODE13 = (0x63, [0x03, 0x01, 0x0f, 0x00, 0x0e],
          [0x5f, 0x4f, 0x50, 0x82, 0x54, 0x80, 0xbf, 0x1f, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00,
           0x00, 0x9c, 0x0e, 0x8f, 0x28, 0x40, 0x96, 0xb9, 0xa3, 0xff],
          [0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0f, 0xff],
          [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
           0x0f, 0x41, 0x00, 0x0f, 0x00, 0x00])


def port(p, portno, val):
    p.wr(0, portno - 0x3b0, 1, val)


def vga_mode(p, mode):
    misc, sr, cr, gr, ar = mode
    port(p, 0x3c2, misc)
    for i, v in enumerate(sr):
        port(p, 0x3c4, i)
        port(p, 0x3c5, v)
    port(p, 0x3d4, 0x11)
    port(p, 0x3d5, 0)
    for i, v in enumerate(cr):
        port(p, 0x3d4, i)
        port(p, 0x3d5, v)
    for i, v in enumerate(gr):
        port(p, 0x3ce, i)
        port(p, 0x3cf, v)
    p.rd(0, 0x3da - 0x3b0)
    for i, v in enumerate(ar):
        port(p, 0x3c0, i)
        port(p, 0x3c0, v)
    port(p, 0x3c0, 0x20)
    port(p, 0x3c8, 0)
    for i in range(16):
        for c in (i * 4 & 0x3f, i * 2 & 0x3f, i * 3 & 0x3f):
            port(p, 0x3c9, c)


def dispi(p, idx, val):
    p.wr(1, 0, 2, idx)
    p.wr(1, 1, 2, val)


# --- xhci -------------------------------------------------------------------

XHCI_WINDOWS = [(0x4000, False), (0x1000, False)]
X_OP, X_RT, X_DB = 0x20, 0x1000, 0x2000
X_IR0 = X_RT + 0x20
X_DCBAA, X_CMD, X_ERST, X_EVSEG = 0x0000, 0x0400, 0x0600, 0x8000
X_DATA = 0x6000


def trb(param, status, control):
    return le64(param) + le32(status) + le32(control)


class XRing:
    """A producer ring of n TRBs closed by a Link TRB that toggles the cycle."""

    def __init__(self, p, base, n=16):
        self.p, self.base, self.n, self.enq, self.cycle = p, base, n, 0, 1

    def at(self):
        return self.base + 16 * self.enq

    def put(self, param, status, control):
        addr = self.at()
        self.p.ram(addr, trb(param, status, (control & ~1) | self.cycle))
        self.enq += 1
        if self.enq == self.n - 1:
            self.p.ram(self.base + 16 * self.enq,
                       trb(self.base, 0, 6 << 10 | 2 | (control & 0x10) | self.cycle))
            self.enq, self.cycle = 0, self.cycle ^ 1
        return addr


def xhci_up(p, msix=False, imod=0):
    p.wr(0, X_OP, 4, 2)                          # HCRST
    p.rd(0, X_OP + 4, 4)
    for off in (0x00, 0x04, 0x08, 0x10, 0x14, 0x18):
        p.rd(0, off, 4)
    p.rd(0, 0x800, 4)                            # Supported Protocol capabilities
    p.rd(0, 0x810, 4)
    p.wr(0, X_OP + 0x38, 4, 4)                   # MaxSlotsEn
    p.wr(0, X_OP + 0x30, 4, X_DCBAA)
    p.wr(0, X_OP + 0x34, 4, 0)
    p.wr(0, X_OP + 0x18, 4, X_CMD | 1)           # CRCR, RCS
    p.wr(0, X_OP + 0x1c, 4, 0)
    p.ram(X_ERST, le64(X_EVSEG) + le32(256) + le32(0))
    p.wr(0, X_IR0 + 0x08, 4, 1)                  # ERSTSZ
    p.wr(0, X_IR0 + 0x18, 4, X_EVSEG)            # ERDP
    p.wr(0, X_IR0 + 0x1c, 4, 0)
    p.wr(0, X_IR0 + 0x10, 4, X_ERST)             # ERSTBA
    p.wr(0, X_IR0 + 0x14, 4, 0)
    p.wr(0, X_IR0 + 0x04, 4, imod)
    p.wr(0, X_IR0 + 0x00, 4, 2)                  # IE
    if msix:
        p.wr(1, 0, 4, 0xfee00000)
        p.wr(1, 4, 4, 0)
        p.wr(1, 8, 4, 0x41)
        p.wr(1, 12, 4, 0)
        p.cfg_wr(0x42, 2, 0x8000)
    p.wr(0, X_OP, 4, 5)                          # INTE, Run
    p.rd(0, X_OP + 4, 4)
    return XRing(p, X_CMD)


def x_cmd(p, cmd, param, control):
    cmd.put(param, 0, control)
    p.wr(0, X_DB, 4, 0)


class XSlot:
    """Contexts and rings of one device slot in their own 8 KiB."""

    def __init__(self, p, slot, port, speed):
        base = 0x1000 + 0x2000 * (slot - 1)
        self.p, self.slot, self.port, self.speed = p, slot, port, speed
        self.inctx, self.outctx = base, base + 0x800
        self.rings = {1: XRing(p, base + 0xc00)}
        for i, dci in enumerate((2, 3, 5, 4)):
            self.rings[dci] = XRing(p, base + 0xd00 + 0x100 * i)

    def address(self, cmd, bsr=False, mps0=64):
        p = self.p
        p.ram(X_DCBAA + 8 * self.slot, le64(self.outctx))
        ctx = bytearray(3 * 32)
        ctx[4:8] = le32(3)
        ctx[32:36] = le32(self.speed << 20 | 1 << 27)
        ctx[36:40] = le32(self.port << 16)
        ctx[64 + 4:64 + 8] = le32(3 << 1 | 4 << 3 | mps0 << 16)
        ctx[64 + 8:64 + 16] = le64(self.rings[1].base | 1)
        ctx[64 + 16:64 + 20] = le32(8)
        p.ram(self.inctx, ctx)
        x_cmd(p, cmd, self.inctx, 11 << 10 | (1 << 9 if bsr else 0) | self.slot << 24)

    def configure(self, cmd, eps):
        """eps: (dci, type, mps, interval)"""
        p = self.p
        ctx = bytearray(33 * 32)
        add = 1
        top = max(dci for dci, _, _, _ in eps)
        for dci, typ, mps, interval in eps:
            add |= 1 << dci
            o = 32 * (1 + dci)
            ctx[o:o + 4] = le32(interval << 16)
            ctx[o + 4:o + 8] = le32(3 << 1 | typ << 3 | mps << 16)
            ctx[o + 8:o + 16] = le64(self.rings[dci].base | 1)
            ctx[o + 16:o + 20] = le32(mps | mps << 16)
        ctx[4:8] = le32(add)
        ctx[32:36] = le32(self.speed << 20 | top << 27)
        ctx[36:40] = le32(self.port << 16)
        p.ram(self.inctx, ctx)
        x_cmd(p, cmd, self.inctx, 12 << 10 | self.slot << 24)

    def control(self, setup, data_len=0, data_in=True, out=b""):
        r, p = self.rings[1], self.p
        trt = 0 if data_len == 0 else 3 if data_in else 2
        r.put(int.from_bytes(setup, "little"), 8, 2 << 10 | 1 << 6 | trt << 16)
        if data_len:
            if out:
                p.ram(X_DATA, out)
            r.put(X_DATA, data_len, 3 << 10 | ((1 << 16 | 1 << 2) if data_in else 0))
        r.put(0, 0, 4 << 10 | 1 << 5 | (1 << 16 if data_len == 0 or not data_in else 0))
        p.wr(0, X_DB + 4 * self.slot, 4, 1)

    def normal(self, dci, buf, length, flags=1 << 5):
        self.rings[dci].put(buf, length, 1 << 10 | flags)
        self.p.wr(0, X_DB + 4 * self.slot, 4, dci)


def setup_pkt(rtype, req, value, index, length):
    return bytes([rtype, req]) + le16(value) + le16(index) + le16(length)


def x_hid(p, cmd, slot, port):
    p.wr(0, X_OP + 0x400 + 16 * (port - 1), 4, 1 << 9 | 1 << 4)     # port reset
    p.rd(0, X_OP + 0x400 + 16 * (port - 1), 4)
    p.wr(0, X_OP + 0x400 + 16 * (port - 1), 4, 1 << 9 | 0x7f << 17)
    x_cmd(p, cmd, 0, 9 << 10)                                          # Enable Slot
    s = XSlot(p, slot, port, 1)
    s.address(cmd, bsr=True)
    s.control(setup_pkt(0x80, 6, 0x0100, 0, 8), 8)
    s.address(cmd)
    s.rings[1] = XRing(p, s.rings[1].base)      # Address Device starts EP0 afresh
    s.control(setup_pkt(0x80, 6, 0x0100, 0, 18), 18)
    s.control(setup_pkt(0x80, 6, 0x0200, 0, 64), 64)
    s.control(setup_pkt(0x80, 6, 0x0302, 0x0409, 64), 64)
    s.control(setup_pkt(0x00, 9, 1, 0, 0))
    s.control(setup_pkt(0x81, 6, 0x2200, 0, 128), 128)
    s.control(setup_pkt(0x21, 0x0a, 0, 0, 0))                         # SET_IDLE
    s.configure(cmd, [(3, 7, 8, 6)])
    return s


def x_cbw(tag, cdb, length, data_in):
    """A Bulk-Only Transport CBW (BOT 5.1) for LUN 0."""
    return (le32(0x43425355) + le32(tag) + le32(length) +
            bytes([0x80 if data_in else 0, 0, len(cdb)]) + cdb.ljust(16, b"\0"))


def x_usb_disk(p, cmd):
    """The USB disk on port 3 (high speed): enumeration, Get Max LUN, then
    INQUIRY, WRITE(10) and READ(10) of two sectors, each CBW, data, CSW."""
    p.wr(0, X_OP + 0x420, 4, 1 << 9 | 1 << 4)                       # port reset
    p.rd(0, X_OP + 0x420, 4)
    p.wr(0, X_OP + 0x420, 4, 1 << 9 | 0x7f << 17)
    x_cmd(p, cmd, 0, 9 << 10)
    s = XSlot(p, 1, 3, 3)
    s.address(cmd)
    s.control(setup_pkt(0x80, 6, 0x0100, 0, 18), 18)
    s.control(setup_pkt(0x00, 9, 1, 0, 0))
    s.control(setup_pkt(0xa1, 0xfe, 0, 0, 1), 1)                    # Get Max LUN
    s.configure(cmd, [(3, 6, 512, 0), (4, 2, 512, 0)])
    isp = 1 << 5 | 1 << 2
    p.ram(X_DATA, x_cbw(1, bytes([0x12, 0, 0, 0, 36, 0]), 36, True))
    s.normal(4, X_DATA, 31)
    s.normal(3, X_DATA + 0x100, 36, isp)
    s.normal(3, X_DATA + 0x200, 13, isp)
    p.loop()
    p.ram(X_DATA + 0x300, x_cbw(2, bytes([0x2a, 0, 0, 0, 0, 4, 0, 0, 2, 0]), 1024, False))
    p.ram(X_DATA + 0x400, bytes(range(256)) * 4)
    s.normal(4, X_DATA + 0x300, 31)
    s.normal(4, X_DATA + 0x400, 1024)
    p.loop(2)
    s.normal(3, X_DATA + 0x200, 13, isp)
    p.loop()
    p.ram(X_DATA + 0x300, x_cbw(3, bytes([0x28, 0, 0, 0, 0, 4, 0, 0, 2, 0]), 1024, True))
    s.normal(4, X_DATA + 0x300, 31)
    s.normal(3, X_DATA + 0x800, 1024, isp)
    p.loop(2)
    s.normal(3, X_DATA + 0x200, 13, isp)
    p.loop()
    return s


def seeds_xhci():
    out = {}
    p = Prog(XHCI_WINDOWS)
    cmd = xhci_up(p)
    s = x_usb_disk(p, cmd)
    # An invalid CBW stalls both pipes until Reset Recovery.
    p.ram(X_DATA + 0x300, b"XXXX" + bytes(27))
    s.normal(4, X_DATA + 0x300, 31)
    s.control(setup_pkt(0x21, 0xff, 0, 0, 0))                       # BOMS reset
    x_cmd(p, cmd, 0, 14 << 10 | 4 << 16 | 1 << 24)                  # Reset Endpoint
    x_cmd(p, cmd, s.rings[4].at() | s.rings[4].cycle, 16 << 10 | 4 << 16 | 1 << 24)
    s.control(setup_pkt(0x02, 1, 0, 0x02, 0))                       # CLEAR_FEATURE(HALT)
    s.control(setup_pkt(0x02, 1, 0, 0x81, 0))
    p.ram(X_DATA + 0x300, x_cbw(4, bytes([0x25] + [0] * 9), 8, True))
    s.normal(4, X_DATA + 0x300, 31)
    s.normal(3, X_DATA + 0x100, 8, 1 << 5 | 1 << 2)
    s.normal(3, X_DATA + 0x200, 13, 1 << 5 | 1 << 2)
    p.loop()
    out["usb-disk"] = p.bytes()

    p = Prog(XHCI_WINDOWS)
    cmd = xhci_up(p, msix=True)
    x_cmd(p, cmd, 0, 23 << 10)                  # No Op
    s = x_hid(p, cmd, 1, 1)
    for i in range(3):
        s.normal(3, X_DATA + 0x100 + 8 * i, 8, 1 << 5 | 1 << 2)
    p.target(0, le16(512) + le16(384) + le16(1024) + le16(768))
    p.target(1, bytes([1, 0xff]))
    p.target(0, le16(1023) + le16(767) + le16(1024) + le16(768))
    s.normal(3, X_DATA + 0x300, 0, 1 << 5)      # no room for the report: babble
    p.target(0, le16(3) + le16(3) + le16(100) + le16(100))
    p.loop()
    p.rd(0, X_IR0, 4)
    p.wr(0, X_OP + 4, 4, 0x18)                  # EINT, PCD
    out["tablet"] = p.bytes()

    p = Prog(XHCI_WINDOWS)
    cmd = xhci_up(p, imod=160)
    s = x_hid(p, cmd, 1, 2)
    s.control(setup_pkt(0x21, 0x0b, 0, 0, 0))   # SET_PROTOCOL boot
    s.control(setup_pkt(0x21, 0x09, 0x0200, 0, 1), 1, False, b"\x02")   # LEDs
    for i in range(4):
        s.normal(3, X_DATA + 0x100 + 8 * i, 8, 1 << 5 | 1 << 2)
    p.target(2, bytes([0xe1, 1]))
    p.target(2, bytes([0x04, 1]))
    p.target(2, bytes([0x04, 0]))
    p.loop(2)
    # Stop Endpoint with a TD waiting, Set TR Dequeue Pointer past it
    x_cmd(p, cmd, 0, 15 << 10 | 3 << 16 | 1 << 24)
    x_cmd(p, cmd, s.rings[3].at() | s.rings[3].cycle, 16 << 10 | 3 << 16 | 1 << 24)
    s.normal(3, X_DATA + 0x200, 8, 1 << 5 | 1 << 2)
    p.target(2, bytes([0xe1, 0]))
    # suspend and remote wakeup
    s.control(setup_pkt(0x00, 3, 1, 0, 0))
    p.wr(0, X_OP + 0x410, 4, 1 << 9 | 1 << 16 | 3 << 5)
    s.normal(3, X_DATA + 0x210, 8, 1 << 5)
    p.target(2, bytes([0x05, 1]))
    p.wr(0, X_OP + 0x410, 4, 1 << 9 | 1 << 22 | 1 << 16)
    p.loop()
    out["keyboard"] = p.bytes()

    p = Prog(XHCI_WINDOWS)
    cmd = xhci_up(p)
    x_cmd(p, cmd, 0, 9 << 10)
    s = XSlot(p, 1, 5, 4)
    s.address(cmd, mps0=512)
    s.control(setup_pkt(0x80, 6, 0x0100, 0, 18), 18)
    s.control(setup_pkt(0x00, 9, 1, 0, 0))
    s.configure(cmd, [(2, 2, 512, 0), (5, 6, 512, 0)])
    p.ram(X_DATA, bytes(range(200)))
    r = s.rings[2]
    r.put(X_DATA, 100, 1 << 10 | 1 << 4)
    r.put(X_DATA + 100, 100, 1 << 10 | 1 << 4)
    r.put(0x1122334455667788, 0, 7 << 10 | 1 << 5)       # Event Data
    r.put(int.from_bytes(b"hello", "little"), 5, 1 << 10 | 1 << 6 | 1 << 5)   # immediate
    p.wr(0, X_DB + 4, 4, 2)
    r = s.rings[5]
    r.put(X_DATA + 0x400, 128, 1 << 10 | 1 << 4 | 1 << 2)
    r.put(X_DATA + 0x480, 128, 1 << 10 | 1 << 5)
    p.wr(0, X_DB + 4, 4, 5)
    s.normal(5, X_DATA + 0x500, 64, 1 << 5 | 1 << 2)     # held until data comes
    s.normal(2, X_DATA, 4)
    p.loop(2)
    s.normal(5, X_DATA + 0x500, 64, 1 << 5 | 1 << 2)
    x_cmd(p, cmd, 0, 15 << 10 | 5 << 16 | 1 << 24)      # Stop Endpoint: Stopped event
    x_cmd(p, cmd, s.rings[5].at() | s.rings[5].cycle, 16 << 10 | 5 << 16 | 1 << 24)
    x_cmd(p, cmd, 0, 17 << 10 | 1 << 24)                # Reset Device
    x_cmd(p, cmd, 0, 10 << 10 | 1 << 24)                # Disable Slot
    out["bulk-echo"] = p.bytes()

    # Malformed: a command ring of links, then after a reset a transfer ring
    # that loops on itself, a stall, bad commands and doorbells.
    p = Prog(XHCI_WINDOWS)
    cmd = xhci_up(p)
    p.ram(cmd.at(), trb(cmd.at(), 0, 6 << 10 | 1))
    p.wr(0, X_DB, 4, 0)
    p.rd(0, X_OP + 4, 4)
    p.reset()
    cmd = xhci_up(p)
    s = x_hid(p, cmd, 1, 1)
    r = s.rings[3]
    p.ram(r.at(), trb(r.at(), 0, 6 << 10 | 1))
    p.wr(0, X_DB + 4, 4, 3)
    s.control(setup_pkt(0x80, 6, 0x0600, 0, 10), 10)    # device qualifier: stall
    x_cmd(p, cmd, 0, 14 << 10 | 1 << 16 | 1 << 24)      # Reset Endpoint
    x_cmd(p, cmd, 0, 10 << 10)                          # slot 0
    x_cmd(p, cmd, 0, 15 << 10 | 9 << 16 | 1 << 24)      # disabled endpoint
    x_cmd(p, cmd, 0, 30 << 10)                          # no such command
    p.wr(0, X_DB + 4 * 7, 4, 1)
    p.wr(0, X_DB + 4, 4, 40)
    p.wr(0, X_OP + 0x18, 4, 1 << 2)                     # Command Abort
    out["malformed"] = p.bytes()

    # An event ring segment table of size 0, and a command ring beyond RAM.
    p = Prog(XHCI_WINDOWS)
    p.wr(0, X_OP, 4, 2)
    p.wr(0, X_OP + 0x38, 4, 4)
    p.wr(0, X_OP + 0x18, 4, X_CMD | 1)
    p.wr(0, X_IR0 + 0x08, 4, 0)
    p.wr(0, X_IR0 + 0x10, 4, X_ERST)
    p.wr(0, X_OP, 4, 5)
    x_cmd(p, XRing(p, X_CMD), 0, 23 << 10)
    p.rd(0, X_OP + 4, 4)
    p.wr(0, X_OP, 4, 2)
    p.wr(0, X_OP + 0x18, 4, 0xfff0)
    p.wr(0, X_OP + 0x1c, 4, 1)
    p.wr(0, X_OP, 4, 1)
    p.wr(0, X_DB, 4, 0)
    p.rd(0, X_OP + 4, 4)
    out["bad-event-ring"] = p.bytes()
    return out


def seeds_vga():
    out = {}
    p = Prog(VGA_WINDOWS)
    vga_mode(p, MODE3)
    text = "Burrow VGA text mode \x01\x02\xdb"
    # plane 2 holds the font: sequencer map mask 4, memory mode 7, GR odd/even off
    port(p, 0x3c4, 2); port(p, 0x3c5, 4)
    port(p, 0x3c4, 4); port(p, 0x3c5, 7)
    port(p, 0x3ce, 5); port(p, 0x3cf, 0)
    port(p, 0x3ce, 6); port(p, 0x3cf, 4)
    for ch in range(0x41, 0x44):
        for row in range(16):
            p.wr(2, ch * 32 + row, 1, 0x18 if row % 2 else 0x7e)
    vga_mode(p, MODE3)
    for i, ch in enumerate(text):
        p.wr(2, 0x18000 + 2 * i, 2, ord(ch) | 0x1f00)
    port(p, 0x3d4, 0x0e); port(p, 0x3d5, 0)
    port(p, 0x3d4, 0x0f); port(p, 0x3d5, 5)
    p.target(0)
    p.target(3)
    p.target(7)
    out["text-mode3"] = p.bytes()

    p = Prog(VGA_WINDOWS)
    vga_mode(p, MODE13)
    for i in range(0, 320 * 8, 8):
        p.wr(2, i, 8, 0x0706050403020100)
    p.target(0)
    vga_mode(p, MODE12)
    port(p, 0x3c4, 2); port(p, 0x3c5, 0x0f)
    for mode in (0, 1, 2, 3):
        port(p, 0x3ce, 5); port(p, 0x3cf, mode)
        port(p, 0x3ce, 0); port(p, 0x3cf, 0x0a)
        port(p, 0x3ce, 1); port(p, 0x3cf, 0x0f if mode == 0 else 0)
        port(p, 0x3ce, 8); port(p, 0x3cf, 0xf0)
        for i in range(16):
            p.rd(2, 80 * i + mode * 1280, 1)
            p.wr(2, 80 * i + mode * 1280, 1, 0x5a)
    p.target(1)
    out["mode13-mode12-planar"] = p.bytes()

    p = Prog(VGA_WINDOWS)
    p.rd(0, 0x3da - 0x3b0)
    port(p, 0x3c0, 0x20)
    dispi(p, 0, 0xb0c5)
    p.wr(1, 0, 2, 0)
    p.rd(1, 1, 2)
    dispi(p, 4, 0x02)                 # GETCAPS
    for idx in (1, 2, 3):
        p.wr(1, 0, 2, idx)
        p.rd(1, 1, 2)
    dispi(p, 4, 0)
    dispi(p, 3, 32)
    dispi(p, 1, 640)
    dispi(p, 2, 480)
    dispi(p, 4, 0x41)                 # ENABLED | LFB
    for y in range(0, 480, 60):
        for x in range(0, 640, 128):
            p.wr(3, (y * 640 + x) * 4, 8, 0x00ff8000_000080ff)
    p.target(0)
    dispi(p, 8, 16)                   # X offset
    dispi(p, 9, 8)
    dispi(p, 6, 1024)                 # virtual width
    p.target(0)
    # 8 bpp with an 8-bit DAC through the MMIO BAR
    p.wr(4, 0x500 + 2 * 4, 2, 0)
    p.wr(4, 0x500 + 2 * 3, 2, 8)
    p.wr(4, 0x500 + 2 * 1, 2, 320)
    p.wr(4, 0x500 + 2 * 2, 2, 200)
    p.wr(4, 0x500 + 2 * 4, 2, 0x61)
    for i in range(16):
        p.wr(4, 0x400 + 0x08, 1, i)
        for c in (i * 16, 255 - i * 16, i * 8):
            p.wr(4, 0x400 + 0x09, 1, c)
    for i in range(0, 320 * 200, 4000):
        p.wr(3, i, 4, 0x0f0e0d0c)
    p.rd(4, 0x600, 4)
    p.rd(4, 0x604, 4)
    p.target(2)
    # banked access through the legacy window
    dispi(p, 5, 3)
    p.wr(2, 0x10, 4, 0x01020304)
    p.target(0)
    out["vbe-modes"] = p.bytes()

    p = Prog(VGA_WINDOWS)
    dispi(p, 4, 0)
    dispi(p, 3, 4)
    dispi(p, 1, 800)
    dispi(p, 2, 600)
    dispi(p, 4, 1)
    p.rd(0, 0x3da - 0x3b0)
    port(p, 0x3c0, 0x20)
    port(p, 0x3c4, 2); port(p, 0x3c5, 0x0f)
    for i in range(0, 100 * 600, 3000):
        p.wr(2, i, 1, 0xff)
    p.target(0)
    dispi(p, 3, 15)
    dispi(p, 4, 0x41)
    p.target(0)
    dispi(p, 3, 24)
    dispi(p, 4, 0x41)
    p.target(0)
    p.reset()
    p.target(0)
    out["vbe-planar-depths-reset"] = p.bytes()
    return out


# --- fw_cfg ---------------------------------------------------------------------

FWCFG_WINDOWS = [(12, True)]


def fwcfg_select(p, key):
    p.wr(0, 0, 2, key)


def fwcfg_dma(p, at, control, length, addr):
    p.ram(at, struct.pack(">IIQ", control, length, addr))
    p.wr(0, 4, 4, 0)                          # high half, big-endian
    p.wr(0, 8, 4, int.from_bytes(struct.pack(">I", at), "little"))
    p.loop()


def seeds_fw_cfg():
    out = {}
    p = Prog(FWCFG_WINDOWS)
    fwcfg_select(p, 0)
    for _ in range(4):
        p.rd(0, 1)
    fwcfg_select(p, 1)
    for _ in range(4):
        p.rd(0, 1)
    fwcfg_select(p, 0x19)
    for _ in range(4 + 64 * 3):
        p.rd(0, 1)
    fwcfg_select(p, 0x5)
    p.rd(0, 1, 2)
    p.rd(0, 4, 4)
    p.rd(0, 8, 4)
    out["signature-directory"] = p.bytes()

    p = Prog(FWCFG_WINDOWS)
    fwcfg_dma(p, 0x100, 0x19 << 16 | 0x08 | 0x02, 4 + 64 * 3, 0x1000)       # select dir, read
    fwcfg_dma(p, 0x100, 0x21 << 16 | 0x08 | 0x02, 5000, 0x2000)             # the table
    fwcfg_dma(p, 0x100, 0x21 << 16 | 0x08 | 0x04, 100, 0)                   # select, skip
    fwcfg_dma(p, 0x100, 0x02, 64, 0x4000)                                   # read on
    fwcfg_dma(p, 0x100, 0x20 << 16 | 0x08 | 0x10, 4, 0x4000)                # write: refused
    fwcfg_dma(p, 0x100, 0x09 << 16 | 0x08 | 0x02, 100, 0xfff0)              # past RAM's end
    fwcfg_dma(p, 0xfff8, 0x02, 4, 0)                                        # the structure half outside
    out["dma"] = p.bytes()
    return out


# --- i8042 -------------------------------------------------------------------

I8042_WINDOWS = [(1, True), (1, True)]


def kbc_cmd(p, c, data=None):
    p.wr(1, 0, 1, c)
    if data is not None:
        p.wr(0, 0, 1, data)


def kbc_read(p, n=1):
    for _ in range(n):
        p.rd(1, 0)
        p.rd(0, 0)


def seeds_i8042():
    out = {}
    p = Prog(I8042_WINDOWS)
    kbc_cmd(p, 0xaa); kbc_read(p)              # self-test
    kbc_cmd(p, 0xab); kbc_read(p)              # keyboard interface test
    kbc_cmd(p, 0x20); kbc_read(p)              # read command byte
    kbc_cmd(p, 0x60, 0x47)                     # write it: interrupts, translation
    p.wr(0, 0, 1, 0xff); kbc_read(p, 2)        # keyboard reset
    p.wr(0, 0, 1, 0xed); kbc_read(p); p.wr(0, 0, 1, 0x07); kbc_read(p)   # LEDs
    p.wr(0, 0, 1, 0xf0); kbc_read(p); p.wr(0, 0, 1, 0x00); kbc_read(p, 2)  # get scan code set
    p.wr(0, 0, 1, 0xf3); kbc_read(p); p.wr(0, 0, 1, 0x20); kbc_read(p)   # typematic
    p.wr(0, 0, 1, 0xf4); kbc_read(p)
    p.target(0, bytes([2, 0x1c, 0x5a]))
    p.target(1, bytes([3, 0xe0, 0xf0, 0x75]))
    kbc_read(p, 4)
    kbc_cmd(p, 0xd0); kbc_read(p)              # output port
    kbc_cmd(p, 0xd1, 0xdf)                     # A20 on
    kbc_cmd(p, 0xad); kbc_cmd(p, 0xae)
    kbc_cmd(p, 0xfe)                           # reset pulse
    out["keyboard"] = p.bytes()

    p = Prog(I8042_WINDOWS)
    kbc_cmd(p, 0xa8)                           # enable the aux port
    kbc_cmd(p, 0xa9); kbc_read(p)
    kbc_cmd(p, 0x60, 0x47)
    for b in (0xff, 0xf6, 0xf3, 200, 0xf3, 100, 0xf3, 80, 0xf2, 0xf3, 200, 0xf3, 200, 0xf3, 80, 0xf2,
              0xe8, 3, 0xe6, 0xe9, 0xf4):
        kbc_cmd(p, 0xd4, b)
        kbc_read(p, 2)
    p.target(4, bytes([5, 0xfb, 1, 1]))
    p.target(5, bytes([0x7f, 0x80, 0, 0x1f]))
    kbc_read(p, 12)
    kbc_cmd(p, 0xd3, 0x55); kbc_read(p)        # write to the aux output buffer
    kbc_cmd(p, 0xd2, 0x66); kbc_read(p)
    p.target(6)
    out["mouse"] = p.bytes()
    return out


# --- UART -----------------------------------------------------------------------

UART_WINDOWS = [(8, True)]


def seeds_uart8250():
    out = {}
    p = Prog(UART_WINDOWS)
    p.wr(0, 3, 1, 0x80); p.wr(0, 0, 1, 1); p.wr(0, 1, 1, 0); p.wr(0, 3, 1, 0x03)   # 115200 8N1
    p.wr(0, 2, 1, 0xc7)                        # FIFOs on, cleared, trigger 14
    p.wr(0, 1, 1, 0x0f)                        # every interrupt
    p.wr(0, 4, 1, 0x0b)                        # DTR, RTS, OUT2
    for c in b"hello, host\r\n":
        p.rd(0, 5)
        p.wr(0, 0, 1, c)
    p.rd(0, 2)
    p.target(0, bytes([5]) + b"typed")
    p.loop(2)
    p.rd(0, 2)
    for _ in range(6):
        p.rd(0, 5)
        p.rd(0, 0)
    p.rd(0, 6)
    p.target(6)
    out["tx-rx-fifo"] = p.bytes()

    p = Prog(UART_WINDOWS)
    p.wr(0, 4, 1, 0x1f)                        # loopback
    p.wr(0, 1, 1, 0x0f)
    for c in b"loop":
        p.wr(0, 0, 1, c)
        p.rd(0, 5)
        p.rd(0, 0)
    p.rd(0, 6)
    p.wr(0, 2, 1, 0x00)                        # FIFOs off
    p.wr(0, 0, 1, 0x41)
    p.rd(0, 2)
    p.rd(0, 0)
    p.wr(0, 7, 1, 0x5a); p.rd(0, 7)            # scratch
    p.target(7)
    p.target(1, bytes([40]) + bytes(range(40)))
    p.loop(3)
    p.rd(0, 5)
    p.reset()
    out["loopback-overrun"] = p.bytes()
    return out


# --- RTC ----------------------------------------------------------------------------

RTC_WINDOWS = [(2, True)]


def cmos_w(p, i, v):
    p.wr(0, 0, 1, i)
    p.wr(0, 1, 1, v)


def cmos_r(p, i):
    p.wr(0, 0, 1, i)
    p.rd(0, 1)


def seeds_rtc():
    out = {}
    p = Prog(RTC_WINDOWS)
    for i in (0x0a, 0, 2, 4, 6, 7, 8, 9, 0x32, 0x0b, 0x0d, 0x10, 0x15, 0x16, 0x17, 0x18, 0x30, 0x31,
              0x34, 0x35, 0x5b, 0x5c, 0x5d, 0x5f):
        cmos_r(p, i)
    out["read-clock-cmos"] = p.bytes()

    p = Prog(RTC_WINDOWS)
    cmos_w(p, 0x0b, 0x82)                      # SET, 24 h, BCD
    for i, v in ((0, 0x59), (2, 0x59), (4, 0x23), (7, 0x31), (8, 0x12), (9, 0x99), (0x32, 0x19)):
        cmos_w(p, i, v)
    cmos_w(p, 0x0b, 0x02)
    cmos_r(p, 0)
    cmos_w(p, 0x0b, 0x86)                      # binary
    cmos_w(p, 4, 0x8b)                         # 11 pm in 12 h mode... binary 24 h
    cmos_w(p, 0x0b, 0x04)                      # 12 h binary
    cmos_r(p, 4)
    cmos_w(p, 0x0a, 0x26)                      # divider, 1024 Hz
    cmos_w(p, 0x0b, 0x42)                      # periodic interrupts
    p.loop(4)
    cmos_r(p, 0x0c)
    cmos_w(p, 1, 0xc0); cmos_w(p, 3, 0xc0); cmos_w(p, 5, 0xc0)   # alarm every second
    cmos_w(p, 0x0b, 0x32)                      # alarm, update-ended
    p.loop(8)
    cmos_r(p, 0x0c)
    p.target(0, le32(3600))
    cmos_r(p, 4)
    cmos_w(p, 0x8f, 0x00)                      # NMI masked
    cmos_w(p, 0x50, 0xaa)
    cmos_r(p, 0x50)
    p.reset()
    out["set-clock-interrupts"] = p.bytes()
    return out


# --- ACPI PM --------------------------------------------------------------------

PM_WINDOWS = [(0x24, True)]


def seeds_acpi_pm():
    out = {}
    p = Prog(PM_WINDOWS)
    p.rd(0, 0x04, 2)
    p.wr(0, 0x02, 2, 0x0100)                   # PWRBTN_EN
    p.target(0)
    p.rd(0, 0x00, 2)
    p.wr(0, 0x00, 2, 0x0100)                   # clear
    for _ in range(3):
        p.rd(0, 0x08, 4)
    p.wr(0, 0x22, 1, 0x01)                     # GPE0 enable bit 0
    p.target(4, bytes([0]))
    p.rd(0, 0x20, 1)
    p.wr(0, 0x20, 1, 0x01)
    p.wr(0, 0x02, 2, 0x0001)                   # TMR_EN
    p.loop()
    p.wr(0, 0x04, 2, (5 << 10) | (1 << 13) | 1)  # S5
    out["button-gpe-s5"] = p.bytes()
    return out


# --- PCI ---------------------------------------------------------------------------

PCI_WINDOWS = [(8, True), (1, True), (0x1000, False), (0x4000, False), (0x40, True),
               (0x2000, False), (0x1000, False), (0x2000, False)]


def cfg_addr(devfn, reg):
    return 0x80000000 | devfn << 8 | (reg & 0xfc)


def pci_rd(p, devfn, reg, size=4):
    p.wr(0, 0, 4, cfg_addr(devfn, reg))
    p.rd(0, 4 + (reg & 3), size)


def pci_wr(p, devfn, reg, size, val):
    p.wr(0, 0, 4, cfg_addr(devfn, reg))
    p.wr(0, 4 + (reg & 3), size, val)


def seeds_pci():
    out = {}
    p = Prog(PCI_WINDOWS)
    for slot in range(6):
        pci_rd(p, slot << 3, 0)
        pci_rd(p, slot << 3, 0x08)
        pci_rd(p, slot << 3, 0x0c)
        pci_rd(p, slot << 3, 0x2c)
        pci_rd(p, slot << 3, 0x3c)
    # BAR sizing of every device, as firmware does
    for slot in (2, 3, 4):
        for bar in range(6):
            reg = 0x10 + 4 * bar
            pci_wr(p, slot << 3, reg, 4, 0xffffffff)
            pci_rd(p, slot << 3, reg)
        pci_wr(p, slot << 3, 0x30, 4, 0xfffff800)
        pci_rd(p, slot << 3, 0x30)
    out["enumerate-size"] = p.bytes()

    p = Prog(PCI_WINDOWS)
    # move the e1000's ROM and I/O BAR, read them, map the ROM over the VGA's MMIO BAR
    pci_wr(p, 3 << 3, 0x30, 4, 0xd0000001)
    pci_wr(p, 3 << 3, 0x04, 2, 0x0007)
    p.rd(5, 0, 4)
    p.rd(5, 0x17fc, 4)
    p.rd(7, 0x1800, 8)
    pci_wr(p, 3 << 3, 0x14, 4, 0xd001)
    p.wr(4, 0, 4, 0x8)
    p.rd(4, 4, 4)
    pci_rd(p, 4 << 3, 0x18)
    pci_wr(p, 3 << 3, 0x30, 4, 0xe1000001)
    # the virtio-rng's MSI-X: capability list, enable, table
    pci_rd(p, 2 << 3, 0x34, 1)
    pci_rd(p, 2 << 3, MSIX_CAP)
    pci_wr(p, 2 << 3, MSIX_CAP + 2, 2, 0x8000)
    p.wr(2, 0, 4, 0xfee00000)
    p.wr(2, 8, 4, 0x4041)
    p.wr(2, 12, 4, 0)
    p.rd(2, 0x800, 8)
    # PIRQ routing, INTx disable, port 0x92, reset control
    pci_wr(p, 1 << 3, 0x60, 4, 0x0b0a0b0a)
    pci_wr(p, 3 << 3, 0x04, 2, 0x0407)
    p.target(0, le16(60) + bytes(60))
    p.loop()
    pci_wr(p, 3 << 3, 0x04, 2, 0x0007)
    p.rd(1, 0)
    p.wr(1, 0, 1, 0x02)
    p.wr(0, 1, 1, 0x02)
    p.wr(0, 1, 1, 0x06)
    # PAM and SMRAM of the host bridge
    pci_wr(p, 0, 0x59, 1, 0x30)
    pci_wr(p, 0, 0x72, 1, 0x0a)
    pci_rd(p, 0, 0x58)
    p.reset()
    out["bars-rom-msix-pirq"] = p.bytes()
    return out


# --- files and messages ---------------------------------------------------------------

def seeds_qcow2():
    qemu_img = shutil.which("qemu-img")
    qemu_io = shutil.which("qemu-io")
    if not qemu_img or not qemu_io:
        sys.exit("make-seeds: the qcow2 seeds need qemu-img and qemu-io (qemu-utils)")
    out = {}
    with tempfile.TemporaryDirectory() as d:
        def img(name, opts, size="1M", io=(), backing=None):
            path = os.path.join(d, name)
            cmd = [qemu_img, "create", "-q", "-f", "qcow2", "-o", opts]
            if backing:
                cmd += ["-b", backing, "-F", "raw"]
            subprocess.run(cmd + [path, size], check=True)
            for c in io:
                subprocess.run([qemu_io, "-f", "qcow2", "-c", c, path], check=True,
                               stdout=subprocess.DEVNULL)
            with open(path, "rb") as f:
                out[name] = f.read()

        img("empty-v3", "cluster_size=512")
        img("data-v3", "cluster_size=512", io=["write -P 0x5a 0 4k", "write -P 0xa5 512k 1k",
                                               "write -z 64k 4k"])
        img("v2", "cluster_size=512,compat=0.10", io=["write -P 1 1k 2k"])
        img("refcount1", "cluster_size=512,refcount_bits=1", io=["write -P 1 0 1k"])
        img("refcount64-lazy", "cluster_size=1024,refcount_bits=64,lazy_refcounts=on",
            io=["write -P 2 0 1k"])
        with open(os.path.join(d, "base.raw"), "wb") as f:
            f.truncate(1 << 20)
        img("backing-raw", "cluster_size=512", backing="base.raw", io=["write -P 3 0 512"])
        raw = os.path.join(d, "plain.raw")
        with open(raw, "wb") as f:
            f.write(bytes(range(256)) * 16)
        comp = os.path.join(d, "compressed")
        subprocess.run([qemu_img, "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", "-o",
                        "cluster_size=4096", raw, comp], check=True)
        with open(comp, "rb") as f:
            out["compressed"] = f.read()
    return out


def seeds_probe():
    out = {}
    out["qcow2"] = b"QFI\xfb\0\0\0\x03" + bytes(1016)
    out["qcow1"] = b"QFI\xfb\0\0\0\x01" + bytes(504)
    out["vmdk"] = b"KDMV" + bytes(508)
    out["vhd"] = b"conectix" + bytes(504)
    out["vdi"] = b"<<< Oracle VM VirtualBox Disk Image >>>\n".ljust(0x40, b"\0") + b"\x7f\x10\xda\xbe" + bytes(444)
    out["luks"] = b"LUKS\xba\xbe\0\x01" + bytes(504)
    out["raw-mbr"] = bytes(446) + b"\x80" + bytes(63) + b"\x55\xaa" + b"QFI\xfb" + bytes(508)
    out["raw-tiny"] = b"\xeb\x3c\x90MSDOS5.0"
    # A fixed VHD: data, then a footer (cookie, version, size, type 2,
    # checksum) found at the end.
    foot = bytearray(512)
    foot[0:8] = b"conectix"
    foot[12:16] = struct.pack(">I", 0x10000)
    foot[16:24] = b"\xff" * 8
    foot[48:56] = struct.pack(">Q", 1024)
    foot[60:64] = struct.pack(">I", 2)
    foot[64:68] = struct.pack(">I", vhd_sum(foot))
    out["vhd-fixed"] = bytes(446) + b"\x80" + bytes(63) + b"\x55\xaa" + bytes(512) + bytes(foot)
    return out


# --- the formats Burrow only reads (fuzz_roimage.h) -----------------------

def sparse_records(files):
    """The input of fuzz_roimage.h for files [(index, bytes)]: the non-zero
    sectors as chunks, and a size record where the file ends in zeroes."""
    out = bytearray()
    for idx, data in files:
        size = len(data)
        sectors = (size + 511) // 512
        nonzero = [any(data[i * 512:(i + 1) * 512]) for i in range(sectors)]
        i = 0
        last_end = 0
        while i < sectors:
            if not nonzero[i]:
                i += 1
                continue
            j = i
            while j < sectors and (nonzero[j] or any(nonzero[j:j + 4])):
                j += 1
            start, end = i * 512, min(j * 512, size)
            for off in range(start, end, 65024):
                chunk = data[off:min(end, off + 65024)]
                out += bytes([idx]) + le32(off) + le16(len(chunk)) + chunk
            last_end = end
            i = j
        if last_end < size:
            out += bytes([idx | 4]) + le32((size + 511) // 512)
    return bytes(out)


def qemu(*args):
    subprocess.run(["qemu-img"] + list(args), check=True, stdout=subprocess.DEVNULL)


def qemu_io(fmt, path, *cmds):
    cmd = ["qemu-io", "-f", fmt]
    for c in cmds:
        cmd += ["-c", c]
    subprocess.run(cmd + [path], check=True, stdout=subprocess.DEVNULL)


def need_qemu(target):
    if not shutil.which("qemu-img") or not shutil.which("qemu-io"):
        sys.exit("make-seeds: the %s seeds need qemu-img and qemu-io (qemu-utils)" % target)


def small_raw(path, size, seed):
    import random
    r = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        for _ in range(6):
            f.seek(r.randrange(0, size - 4096) & ~511)
            f.write(bytes(r.randrange(1, 256) for _ in range(r.choice((512, 1024, 4096)))))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def seeds_vdi():
    need_qemu("vdi")
    out = {}
    with tempfile.TemporaryDirectory() as d:
        p = lambda n: os.path.join(d, n)
        small_raw(p("a.raw"), 4 << 20, 1)
        qemu("create", "-q", "-f", "vdi", p("empty.vdi"), "3M")
        qemu("convert", "-q", "-O", "vdi", p("a.raw"), p("data.vdi"))
        qemu("convert", "-q", "-O", "vdi", "-o", "static=on", p("a.raw"), p("fixed.vdi"))
        for n in ("empty", "data", "fixed"):
            out[n] = sparse_records([(0, read(p(n + ".vdi")))])
    return out


def seeds_vmdk():
    need_qemu("vmdk")
    out = {}
    with tempfile.TemporaryDirectory() as d:
        p = lambda n: os.path.join(d, n)
        small_raw(p("a.raw"), 2 << 20, 2)
        qemu("create", "-q", "-f", "vmdk", p("empty.vmdk"), "1M")
        out["empty"] = sparse_records([(0, read(p("empty.vmdk")))])
        for sub in ("monolithicSparse", "streamOptimized"):
            qemu("convert", "-q", "-O", "vmdk", "-o", "subformat=" + sub, p("a.raw"), p(sub + ".vmdk"))
            out[sub] = sparse_records([(0, read(p(sub + ".vmdk")))])
        # Descriptors naming the second file as a sparse or flat extent.
        qemu("convert", "-q", "-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", p("a.raw"), p("t.vmdk"))
        desc = (b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                b'createType="twoGbMaxExtentSparse"\n\n# Extent description\nRW 4096 SPARSE "x.vmdk"\n'
                b'RW 2048 ZERO\nRW 64 FLAT "x.vmdk" 1\n\n#DDB\nddb.adapterType = "ide"\n')
        out["descriptor-sparse"] = sparse_records([(0, desc), (1, read(p("t-s001.vmdk")))])
        desc = (b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                b'createType="monolithicFlat"\n\n# Extent description\nRW 4096 FLAT "x.vmdk" 0\n')
        out["descriptor-flat"] = sparse_records([(0, desc), (1, read(p("a.raw")))])
        # A child whose parent is the second file, with zeroed grains.
        qemu("convert", "-q", "-O", "vmdk", p("a.raw"), p("x.vmdk"))
        qemu("create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", "-b", "x.vmdk", "-F", "vmdk", p("c.vmdk"))
        qemu_io("vmdk", p("c.vmdk"), "write -P 0x5a 64k 4k", "write -z 512k 128k")
        out["child"] = sparse_records([(0, read(p("c.vmdk"))), (1, read(p("x.vmdk")))])
    return out


def vhd_sum(b):
    """One's complement of the byte sum (checksum field left zero)."""
    return (~sum(b)) & 0xffffffff


def vhd_zero_sums(data):
    """A VHD with its checksums zeroed: fuzz_vhd.c fills them in."""
    b = bytearray(data)
    if len(b) >= 512 and b[-512:-504] == b"conectix":
        dh = struct.unpack(">Q", b[-512 + 16:-512 + 24])[0]
        b[-512 + 64:-512 + 68] = bytes(4)
        if b[0:8] == b"conectix":
            b[64:68] = bytes(4)
        if dh + 1024 <= len(b) and b[dh:dh + 8] == b"cxsparse":
            b[dh + 36:dh + 40] = bytes(4)
    return bytes(b)


def vhd_child(parent, parent_name):
    """A differencing VHD over parent (a dynamic VHD's bytes), checksums
    zeroed: blocks of 64 KiB, block 0 partly here, block 2 whole."""
    size = struct.unpack(">Q", parent[-512 + 48:-512 + 56])[0]
    block, bitmap = 64 << 10, 512
    nblocks = (size + block - 1) // block
    foot = bytearray(parent[-512:])
    foot[16:24] = struct.pack(">Q", 512)
    foot[60:64] = struct.pack(">I", 4)
    foot[64:68] = bytes(4)
    foot[68:84] = bytes(range(0x40, 0x50))
    dh = bytearray(1024)
    loc_at, bat_at = 1536, 2048
    data_at = bat_at + ((nblocks * 4 + 511) & ~511)
    dh[0:8] = b"cxsparse"
    dh[8:16] = b"\xff" * 8
    dh[16:24] = struct.pack(">Q", bat_at)
    dh[24:28] = struct.pack(">I", 0x10000)
    dh[28:32] = struct.pack(">I", nblocks)
    dh[32:36] = struct.pack(">I", block)
    dh[40:56] = parent[-512 + 68:-512 + 84]
    name = parent_name.encode("utf-16-be")
    dh[64:64 + len(name)] = name
    rel = (".\\" + parent_name).encode("utf-16-le")
    dh[576:600] = b"W2ru" + struct.pack(">III", 1, len(rel), 0) + struct.pack(">Q", loc_at)
    img = bytearray(data_at + 2 * (bitmap + block) + 512)
    img[0:512] = foot
    img[512:1536] = dh
    img[loc_at:loc_at + len(rel)] = rel
    bat = [0xffffffff] * nblocks
    at = data_at
    for k, bits in ((0, b"\xf0\x0f" + b"\x00" * 14), (2, b"\xff" * 16)):
        bat[k] = at // 512
        img[at:at + len(bits)] = bits
        img[at + bitmap:at + bitmap + block] = bytes((k * 3 + i) & 0xff or 1 for i in range(block))
        at += bitmap + block
    img[bat_at:bat_at + 4 * nblocks] = b"".join(struct.pack(">I", e) for e in bat)
    img[at:at + 512] = foot
    return bytes(img)


def seeds_vhd():
    need_qemu("vhd")
    out = {}
    with tempfile.TemporaryDirectory() as d:
        p = lambda n: os.path.join(d, n)
        small_raw(p("a.raw"), 4 << 20, 3)
        qemu("create", "-q", "-f", "vpc", p("empty.vhd"), "3M")
        qemu("convert", "-q", "-O", "vpc", p("a.raw"), p("data.vhd"))
        qemu("convert", "-q", "-O", "vpc", "-o", "subformat=fixed", p("a.raw"), p("fixed.vhd"))
        for n in ("empty", "data", "fixed"):
            out[n] = sparse_records([(0, vhd_zero_sums(read(p(n + ".vhd"))))])
        parent = read(p("data.vhd"))
        out["differencing"] = sparse_records([(0, vhd_child(parent, "x.vmdk")), (1, vhd_zero_sums(parent))])
    return out


def vhdx_zero_crcs(data):
    """A VHDX with its header and region table CRCs zeroed: fuzz_vhdx.c
    fills them in."""
    b = bytearray(data)
    for at in (64 << 10, 128 << 10, 192 << 10, 256 << 10):
        b[at + 4:at + 8] = bytes(4)
    return bytes(b)


def vhdx_child(child, parent):
    """qemu-img's dynamic VHDX (1 MiB blocks) made a differencing image of
    parent: HasParent, a parent locator, blocks never written NOT_PRESENT,
    block 3 partly present with its sector bitmap."""
    b = bytearray(child)

    def region(guid):
        rt = 192 << 10
        for i in range(struct.unpack_from("<I", b, rt + 8)[0]):
            e = rt + 16 + 32 * i
            if b[e:e + 16] == guid:
                return struct.unpack_from("<Q", b, e + 16)[0]
    bat = region(bytes.fromhex("6677c22d23f600429d64115e9bfd4a08"))
    meta = region(bytes.fromhex("06a27c8b90479a4bb8fe575f050f886e"))
    n = struct.unpack_from("<H", b, meta + 10)[0]
    for i in range(n):
        e = meta + 32 + 32 * i
        if b[e:e + 16] == bytes.fromhex("3767a1ca36fa434db3b633f0aa44e76b"):
            fp = meta + struct.unpack_from("<I", b, e + 16)[0]
            b[fp + 4] |= 2
    # The parent's data GUID, from its current header.
    h1, h2 = 64 << 10, 128 << 10
    cur = h2 if struct.unpack_from("<Q", parent, h2 + 8)[0] > struct.unpack_from("<Q", parent, h1 + 8)[0] else h1
    g = parent[cur + 32:cur + 48]
    guid = "{%08x-%04x-%04x-%s-%s}" % (struct.unpack_from("<I", g)[0], struct.unpack_from("<H", g, 4)[0],
                                       struct.unpack_from("<H", g, 6)[0], g[8:10].hex(), g[10:16].hex())
    kv = [("parent_linkage", guid), ("relative_path", ".\\x.vmdk"), ("absolute_win32_path", "C:\\x.vmdk")]
    loc = bytearray(bytes.fromhex("b7ef4ab09ed1814ab78925b8e9445913") + struct.pack("<HH", 0, len(kv)))
    strings = bytearray()
    base = 20 + 12 * len(kv)
    for k, v in kv:
        ke, ve = k.encode("utf-16-le"), v.encode("utf-16-le")
        loc += struct.pack("<IIHH", base + len(strings), base + len(strings) + len(ke), len(ke), len(ve))
        strings += ke + ve
    loc += strings
    e = meta + 32 + 32 * n
    b[e:e + 32] = bytes.fromhex("2d5fd3a80bb34d45abf7d3d84834ab0c") + struct.pack("<IIII", 0x11000, len(loc), 4, 0)
    struct.pack_into("<H", b, meta + 10, n + 1)
    b[meta + 0x11000:meta + 0x11000 + len(loc)] = loc
    size = len(b)
    for k in range(4):
        v = struct.unpack_from("<Q", b, bat + 8 * k)[0]
        if v & 7 != 6:
            struct.pack_into("<Q", b, bat + 8 * k, 0)
    end = (size + (1 << 20) - 1) & ~((1 << 20) - 1)
    b += bytes(end + (2 << 20) - size)
    b[end:end + 4096] = bytes((i * 7) & 0xff or 1 for i in range(4096))
    b[end + (1 << 20) + 768:end + (1 << 20) + 776] = b"\xff\x0f\xf0\x01\x02\x04\x08\x10"
    struct.pack_into("<Q", b, bat + 8 * 3, 7 | end)
    struct.pack_into("<Q", b, bat + 8 * 4096, 6 | (end + (1 << 20)))
    return bytes(b)


def seeds_vhdx():
    need_qemu("vhdx")
    out = {}
    with tempfile.TemporaryDirectory() as d:
        p = lambda n: os.path.join(d, n)
        small_raw(p("a.raw"), 4 << 20, 4)
        qemu("create", "-q", "-f", "vhdx", "-o", "block_size=1M", p("empty.vhdx"), "3M")
        qemu("convert", "-q", "-O", "vhdx", "-o", "block_size=1M", p("a.raw"), p("data.vhdx"))
        qemu("convert", "-q", "-O", "vhdx", "-o", "subformat=fixed,block_size=1M", p("a.raw"), p("fixed.vhdx"))
        for n in ("empty", "data", "fixed"):
            out[n] = sparse_records([(0, vhdx_zero_crcs(read(p(n + ".vhdx"))))])
        qemu("create", "-q", "-f", "vhdx", "-o", "block_size=1M", p("c.vhdx"), "4M")
        qemu_io("vhdx", p("c.vhdx"), "write -P 0x5a 1M 64k")
        parent = read(p("data.vhdx"))
        child = vhdx_child(read(p("c.vhdx")), parent)
        out["differencing"] = sparse_records([(0, vhdx_zero_crcs(child)), (1, vhdx_zero_crcs(parent))])
    return out


def seeds_vmdef():
    out = {}
    out["minimal"] = b"""[burrow]
format=1

[vm]
name=demo
uuid=0d3f5c9e-6a2b-4c1d-9e8f-7a6b5c4d3e2f
os=debian
memory=1024
cpus=2

[display]
type=sdl
"""
    out["full"] = b"""# a definition with everything
[burrow]
format=1

[vm]
name=web
uuid=6f1c2d3e-4b5a-4978-8695-a4b3c2d1e0f9
os=windows
memory = 4096
cpus=4
boot=dc

[display]
type=vnc
vnc-listen=127.0.0.1:5901
vnc-password-file=/home/u/.vncpass

[cdrom]
path=/isos/installer.iso

[disk 0]
path=disk0.qcow2
interface=sata
format=qcow2
readonly=false

[disk 1]
path=/data/extra.img
interface=virtio
format=raw
readonly=true

[nic 0]
mode=user
model=e1000
mac=52:54:00:12:34:56
hostfwd=tcp::2222-:22;udp:127.0.0.1:5353-10.0.2.15:53

[nic 1]
mode=user
model=virtio
"""
    out["errors"] = b"""[burrow]
format=2
[vm]
name=bad/name
memory=lots
[disk 9]
path=
[nic 0]
hostfwd=tcp::99999-:22
[unknown]
key=value
"""
    return out


def seeds_control():
    """A flags byte (bit 0 two clients, 1 half-close, 2 read late, 3 sent 32
    times, 4-7 chunk size 2^n), then what the client sends."""
    out = {}
    lines = (b'{"command":"help"}\n'
             b'{"command":"echo","id":1,"arguments":{"a":[1,2,{"b":null}],"s":"\\u00e9"}}\n'
             b'{"command":"fail","id":"x","arguments":{"class":"invalid-argument"}}\n'
             b'{"command":"fail-silent"}\n{"command":"not-object","id":[1]}\n'
             b'{"command":"broadcast","arguments":{"event":"state-changed","state":"running"}}\n'
             b'{"command":"after","id":2}\n{"command":"big","arguments":{"n":5000}}\n')
    out["commands"] = bytes([0xf0]) + lines
    out["byte-by-byte-two-clients"] = bytes([0x01]) + lines
    out["malformed"] = bytes([0x52]) + (b'\n  \r\n{"command":\n[1,2]\n"str"\n{"id":3}\n'
                                        b'{"command":5}\n{"command":"echo","arguments":[]}\n'
                                        b'{"command":"echo","extra":1}\n{"command":"nope"}\n'
                                        b'{"command":"echo","command":"echo"}\n{"id":\x00}\n'
                                        b'{"command":"echo","id":1e999}\n')
    out["overlong-line"] = bytes([0xc8]) + b'{"command":"echo","arguments":{"pad":"' + b"x" * 3000
    out["half-close-partial"] = bytes([0x72]) + b'{"command":"echo","id":7}\n{"command":"ec'
    return out

# --- hda --------------------------------------------------------------------

HDA_WINDOWS = [(0x4000, False)]
H_CORB, H_RIRB, H_DPL = 0x1000, 0x1400, 0x1c00
H_BDL_IN, H_BDL_OUT = 0x1e00, 0x1f00
H_BUF_IN, H_BUF_OUT = 0x2000, 0x4000
SD_IN, SD_OUT = 0x80, 0xa0


def verb(nid, v, payload):
    """A 12-bit verb with an 8-bit payload, or a 4-bit one with 16 bits."""
    if v >= 0x100:
        return nid << 20 | v << 8 | payload
    return nid << 20 | v << 16 | payload


def hda_up(p, verbs):
    """Controller out of reset, CORB and RIRB running with verbs queued."""
    p.wr(0, 0x08, 4, 1)                       # GCTL.CRST
    p.loop()
    p.rd(0, 0x0e, 2)                          # STATESTS: the codec
    p.wr(0, 0x20, 4, 1 << 31 | 1 << 30 | 3)   # INTCTL: GIE, CIE, both streams
    p.ram(H_CORB, b"".join(le32(0) for _ in range(1)) +
          b"".join(le32(v) for v in verbs))
    p.wr(0, 0x40, 4, H_CORB)
    p.wr(0, 0x44, 4, 0)
    p.wr(0, 0x4e, 1, 2)                       # 256 entries
    p.wr(0, 0x4a, 2, 0x8000)                  # CORBRP reset
    p.wr(0, 0x4a, 2, 0)
    p.wr(0, 0x50, 4, H_RIRB)
    p.wr(0, 0x54, 4, 0)
    p.wr(0, 0x5e, 1, 2)
    p.wr(0, 0x58, 2, 0x8000)                  # RIRBWP reset
    p.wr(0, 0x5a, 2, 1)                       # RINTCNT
    p.wr(0, 0x5c, 1, 3)                       # RIRBCTL: DMA, interrupt
    p.wr(0, 0x4c, 1, 3)                       # CORBCTL: run, CMEIE
    p.wr(0, 0x48, 2, len(verbs))              # CORBWP
    p.loop()
    p.rd(0, 0x58, 2)
    p.rd(0, 0x5d, 1)
    p.wr(0, 0x5d, 1, 5)
    p.wr(0, 0x70, 4, H_DPL | 1)               # position buffer on


def hda_stream(p, sd, bdl, buf, n, length, stream=1, fmt=0x11, lvi=None, entries=None):
    """n BDL entries of length bytes at buf, then the stream running."""
    ents = entries or [(buf + i * length, length, 1) for i in range(n)]
    p.ram(bdl, b"".join(le64(a) + le32(l) + le32(ioc) for a, l, ioc in ents))
    p.wr(0, sd + 0x00, 1, 1)                  # SRST
    p.wr(0, sd + 0x00, 1, 0)
    p.wr(0, sd + 0x08, 4, sum(l for _, l, _ in ents))
    p.wr(0, sd + 0x0c, 2, len(ents) - 1 if lvi is None else lvi)
    p.wr(0, sd + 0x12, 2, fmt)
    p.wr(0, sd + 0x18, 4, bdl)
    p.wr(0, sd + 0x1c, 4, 0)
    p.wr(0, sd + 0x00, 4, stream << 20 | 0x1e)  # RUN, IOCE, FEIE, DEIE
    p.loop()


def seeds_hda():
    out = {}
    walk = [verb(0, 0xf00, 0), verb(0, 0xf00, 4), verb(1, 0xf00, 4), verb(1, 0xf00, 5),
            verb(2, 0xf00, 9), verb(2, 0xf00, 0xa), verb(4, 0xf00, 0xc), verb(4, 0xf02, 0),
            verb(4, 0xf1c, 0), verb(5, 0xf1c, 0), verb(3, 0xf02, 0), verb(1, 0xf20, 0),
            verb(1, 0x7ff, 0)]
    p = Prog(HDA_WINDOWS)
    hda_up(p, walk)
    out["codec-walk"] = p.bytes()

    setup = [verb(2, 0x706, 0x10), verb(2, 0x2, 0x11), verb(2, 0x3, 0xb03f),
             verb(4, 0x707, 0x40), verb(4, 0x3, 0xb000), verb(4, 0x70c, 2),
             verb(3, 0x706, 0x20), verb(3, 0x2, 0x11), verb(5, 0x707, 0x20),
             verb(3, 0x3, 0x703f)]
    p = Prog(HDA_WINDOWS)
    hda_up(p, setup)
    p.ram(H_BUF_OUT, bytes((i * 7) & 0xff for i in range(256)))
    hda_stream(p, SD_OUT, H_BDL_OUT, H_BUF_OUT, 4, 0x400, stream=1)
    p.target(7)
    p.rd(0, SD_OUT + 0x04, 4)
    p.rd(0, 0x24, 4)
    p.rd(0, SD_OUT + 0x03, 1)
    p.wr(0, SD_OUT + 0x03, 1, 0x1c)
    p.target(7)
    p.loop(4)
    p.rd(0, SD_OUT + 0x04, 4)
    hda_stream(p, SD_IN, H_BDL_IN, H_BUF_IN, 2, 0x800, stream=2)
    p.target(7)
    p.rd(0, SD_IN + 0x04, 4)
    p.wr(0, SD_IN + 0x00, 1, 0)
    p.wr(0, SD_OUT + 0x00, 1, 0)
    out["play-record"] = p.bytes()

    # Broken lists: a zero length, a buffer past RAM, LVI above 255, CBL
    # not matching; each stops the stream, which then plays again.
    p = Prog(HDA_WINDOWS)
    hda_up(p, setup)
    hda_stream(p, SD_OUT, H_BDL_OUT, H_BUF_OUT, 2, 0x400,
               entries=[(H_BUF_OUT, 0x400, 1), (H_BUF_OUT, 0, 0)])
    p.rd(0, SD_OUT + 0x03, 1)
    hda_stream(p, SD_OUT, H_BDL_OUT, H_BUF_OUT, 2, 0x400,
               entries=[(H_BUF_OUT, 0x400, 1), (0xfff000, 0x400, 1)])
    p.rd(0, SD_OUT + 0x03, 1)
    hda_stream(p, SD_OUT, H_BDL_OUT, H_BUF_OUT, 2, 0x400, lvi=0x1ff)
    p.rd(0, SD_OUT + 0x03, 1)
    hda_stream(p, SD_OUT, H_BDL_OUT, H_BUF_OUT, 2, 0x400, fmt=0x4011)
    p.target(3)
    p.rd(0, SD_OUT + 0x04, 4)
    p.reset()
    p.rd(0, 0x08, 4)
    out["broken-bdl"] = p.bytes()
    return out


TARGETS = {
    "virtio_blk": seeds_virtio_blk,
    "virtio_net": seeds_virtio_net,
    "virtio_pci": seeds_virtio_pci,
    "virtqueue": seeds_virtqueue,
    "ahci": seeds_ahci,
    "e1000": seeds_e1000,
    "xhci": seeds_xhci,
    "hda": seeds_hda,
    "vga": seeds_vga,
    "fw_cfg": seeds_fw_cfg,
    "i8042": seeds_i8042,
    "uart8250": seeds_uart8250,
    "rtc": seeds_rtc,
    "acpi_pm": seeds_acpi_pm,
    "pci": seeds_pci,
    "qcow2": seeds_qcow2,
    "probe": seeds_probe,
    "vdi": seeds_vdi,
    "vmdk": seeds_vmdk,
    "vhd": seeds_vhd,
    "vhdx": seeds_vhdx,
    "vmdef": seeds_vmdef,
    "control": seeds_control,
}


def main():
    names = sys.argv[1:] or sorted(TARGETS)
    for name in names:
        seeds = TARGETS[name]()
        d = os.path.join(CORPUS, name)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        for sname, data in sorted(seeds.items()):
            with open(os.path.join(d, sname), "wb") as f:
                f.write(data)
        print("%-12s %2d seeds, %6d bytes" % (name, len(seeds), sum(len(v) for v in seeds.values())))


if __name__ == "__main__":
    main()
