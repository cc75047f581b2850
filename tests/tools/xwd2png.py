#!/usr/bin/env python3
"""Converts an X window dump (xwd -root, 24/32-bit ZPixmap) to PNG with the
standard library only.  Usage: xwd2png.py IN.xwd OUT.png"""
import struct
import sys
import zlib


def main():
    data = open(sys.argv[1], 'rb').read()
    header = struct.unpack('>25I', data[:100])
    header_size, width, height = header[0], header[4], header[5]
    bytes_per_line, ncolors = header[12], header[19]
    # Depth-24 servers store 4 bytes a pixel whatever bits_per_pixel says.
    if width == 0 or bytes_per_line // width != 4:
        sys.exit('xwd2png: only dumps with 4 bytes per pixel are supported')
    offset = header_size + ncolors * 12
    rows = []
    for y in range(height):
        line = data[offset + y * bytes_per_line: offset + y * bytes_per_line + width * 4]
        rgb = bytearray(width * 3)
        rgb[0::3] = line[2::4]
        rgb[1::3] = line[1::4]
        rgb[2::3] = line[0::4]
        rows.append(b'\x00' + bytes(rgb))

    def chunk(kind, payload):
        crc = zlib.crc32(kind + payload) & 0xffffffff
        return struct.pack('>I', len(payload)) + kind + payload + struct.pack('>I', crc)

    png = (b'\x89PNG\r\n\x1a\n'
           + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
           + chunk(b'IDAT', zlib.compress(b''.join(rows)))
           + chunk(b'IEND', b''))
    open(sys.argv[2], 'wb').write(png)


if __name__ == '__main__':
    main()
