namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Runtime.InteropServices;
    using Btrfs.Interop;

    /// <summary>One fiemap_extent as the kernel returned it.</summary>
    internal readonly record struct RawExtent(ulong Logical, ulong Physical, ulong Length, uint Flags)
    {
        internal ulong End => Logical + Length;
    }

    /// <summary>
    /// Pages through FS_IOC_FIEMAP with one fixed-size buffer and yields extents lazily, so memory
    /// does not grow with the number of extents.
    /// Paging rules (kernel-and-anchors.md 3.2): ask for [start, end); stop when nothing is mapped, an
    /// extent carries FIEMAP_EXTENT_LAST, or the range is covered; otherwise restart at the end of the
    /// last extent returned. The kernel returns any extent that overlaps the range, so an extent can
    /// start before the requested start: one already yielded is skipped.
    /// Extents are cut to the requested range, so a ranged query means the same on every filesystem
    /// (xfs and ext4 trim in the kernel; btrfs returns whole extents).
    /// </summary>
    internal static class FiemapReader
    {
        /// <summary>Extents per ioctl: 512 × 56 B + 32 B = 28.7 KiB, above the 292-extent throughput knee.</summary>
        internal const int DefaultPageExtents = 512;

        private const int HeaderSize = 32;
        private const int ExtentSize = 56;

        internal static IEnumerable<RawExtent> Read(RegularFile file, ulong start, ulong length, bool sync, int pageExtents = DefaultPageExtents)
        {
            ArgumentNullException.ThrowIfNull(file);
            ArgumentOutOfRangeException.ThrowIfLessThan(pageExtents, 1);
            ArgumentOutOfRangeException.ThrowIfZero(length);
            ulong end = ulong.MaxValue - start < length ? ulong.MaxValue : start + length;
            return ReadIterator(file, start, end, sync ? Libc.FIEMAP_FLAG_SYNC : 0, pageExtents);
        }

        private static IEnumerable<RawExtent> ReadIterator(RegularFile file, ulong start, ulong end, uint flags, int pageExtents)
        {
            byte[] buffer = new byte[HeaderSize + (pageExtents * ExtentSize)];
            ulong rangeStart = start;
            bool emitted = false;
            ulong emittedEnd = 0;

            while (start < end)
            {
                int mapped = Fetch(file, buffer, start, end - start, flags, (uint)pageExtents);
                if (mapped == 0)
                {
                    yield break;
                }

                bool last = false;
                RawExtent extent = default;
                for (int i = 0; i < mapped; i++)
                {
                    extent = ReadExtent(buffer, i);
                    last |= (extent.Flags & Libc.FIEMAP_EXTENT_LAST) != 0;
                    if (emitted && extent.Logical < emittedEnd)
                    {
                        continue; // overlaps what an earlier page already returned
                    }

                    emitted = true;
                    emittedEnd = extent.End;
                    yield return ClipToRange(extent, rangeStart, end);
                }

                ulong next = extent.End;
                if (last || next <= start)
                {
                    // LAST seen, or no progress (a zero-length delalloc extent): never ask for the same range twice.
                    yield break;
                }

                start = next;
            }
        }

        /// <summary>
        /// Cuts an extent to [start, end). The physical offset moves with the logical one, except where
        /// it does not address the data byte for byte (encoded/compressed, inline, unknown location).
        /// </summary>
        internal static RawExtent ClipToRange(RawExtent e, ulong start, ulong end)
        {
            ulong lo = Math.Max(e.Logical, start);
            ulong hi = Math.Min(e.End, end);
            if ((lo == e.Logical && hi == e.End) || hi <= lo)
            {
                return e;
            }

            const uint notByteAddressed = Libc.FIEMAP_EXTENT_ENCODED | Libc.FIEMAP_EXTENT_UNKNOWN | Libc.FIEMAP_EXTENT_NOT_ALIGNED;
            bool movable = e.Physical != 0 && (e.Flags & notByteAddressed) == 0;
            ulong physical = movable ? e.Physical + (lo - e.Logical) : e.Physical;
            return new RawExtent(lo, physical, hi - lo, e.Flags);
        }

        private static RawExtent ReadExtent(byte[] buffer, int index)
        {
            Libc.FiemapExtent fe = MemoryMarshal.Read<Libc.FiemapExtent>(buffer.AsSpan(HeaderSize + (index * ExtentSize), ExtentSize));
            return new RawExtent(fe.Logical, fe.Physical, fe.Length, fe.Flags);
        }

        private static unsafe int Fetch(RegularFile file, byte[] buffer, ulong start, ulong length, uint flags, uint count)
        {
            var header = new Libc.Fiemap { Start = start, Length = length, Flags = flags, ExtentCount = count };
            MemoryMarshal.Write(buffer.AsSpan(0, HeaderSize), in header);
            int rc;
            fixed (byte* p = buffer)
            {
                rc = Libc.Ioctl(file.Handle, Libc.FS_IOC_FIEMAP, p);
            }

            if (rc != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw FiemapError(errno, file);
            }

            header = MemoryMarshal.Read<Libc.Fiemap>(buffer.AsSpan(0, HeaderSize));
            return (int)Math.Min(header.MappedExtents, count);
        }

        private static FileOperationException FiemapError(int errno, RegularFile file)
        {
            const string op = "FS_IOC_FIEMAP";
            if (errno is Libc.EOPNOTSUPP or Libc.ENOTTY)
            {
                string fs = file.FileSystem.DisplayName;
                return new FileOperationException(
                    FileErrorKind.NotSupported,
                    errno,
                    op,
                    file.Path,
                    $"Cannot map the extents of '{file.Path}': {fs} does not support FIEMAP ({Libc.ErrnoName(errno)}). Extent maps are available on btrfs, xfs and ext4; copy the file to one of those to inspect its layout.");
            }

            return FileOperationException.FromErrno(errno, op, file.Path, "Cannot map the extents of");
        }
    }
}
