namespace Btrfs.Kernel
{
    using System;
    using System.Buffers;
    using System.Collections.Generic;
    using System.Runtime.InteropServices;
    using System.Threading.Tasks;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>One fiemap_extent as the kernel returned it.</summary>
    internal readonly record struct RawExtent(ulong Logical, ulong Physical, ulong Length, ExtentFlags Flags)
    {
        internal ulong End => Logical + Length;

        /// <summary>
        /// <see cref="End"/> as a file offset: at most <see cref="long.MaxValue"/>, the largest file size. A block written at
        /// the last byte of a file of that size ends at 2^63, which a long cannot hold (before: a negative end, and the
        /// extent left out of a map and off by one in the hole count; a hostile test).
        /// </summary>
        internal long FileEnd => End > long.MaxValue ? long.MaxValue : (long)End;
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
    internal static class Fiemap
    {
        /// <summary>Extents per ioctl: 512 × 56 B + 32 B = 28.7 KiB, above the 292-extent throughput knee.</summary>
        internal const int DefaultPageExtents = 512;

        private const int HeaderSize = 32;
        private const int ExtentSize = 56;

        internal static IEnumerable<RawExtent> Read(OpenFile file, ulong start, ulong length, bool sync, int pageExtents = DefaultPageExtents)
        {
            ArgumentNullException.ThrowIfNull(file);
            return Read(file.Handle, file.Path, start, length, sync, pageExtents);
        }

        /// <summary>The extents of [start, start + length) of the file open as <paramref name="fd"/> (named <paramref name="path"/> in errors).</summary>
        internal static IEnumerable<RawExtent> Read(SafeFileDescriptor fd, string path, ulong start, ulong length, bool sync, int pageExtents = DefaultPageExtents, bool clip = true)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(pageExtents, 1);
            ArgumentOutOfRangeException.ThrowIfZero(length);
            ulong end = ulong.MaxValue - start < length ? ulong.MaxValue : start + length;
            return ReadIterator(fd, path, start, end, sync ? Libc.FIEMAP_FLAG_SYNC : 0, pageExtents, clip);
        }

        /// <summary>
        /// The extents that overlap [start, start + length), as the kernel returns them, not cut to the range: on btrfs
        /// whole extents, so one that reaches past either end of the range can be told from one inside it (xfs and
        /// ext4 trim them in the kernel).
        /// </summary>
        internal static IEnumerable<RawExtent> ReadOverlapping(OpenFile file, ulong start, ulong length, bool sync)
        {
            ArgumentNullException.ThrowIfNull(file);
            return Read(file.Handle, file.Path, start, length, sync, clip: false);
        }

        /// <summary>
        /// The file's bytes in extents marked shared (FIEMAP_EXTENT_SHARED), up to its end (an extent's last block
        /// reaches past a size that is not a multiple of it: not the file's), and how many such extents; the whole file.
        /// Every SharedBytes figure of the module is this one.
        /// </summary>
        internal static (long Bytes, long Count) Shared(SafeFileDescriptor fd, string path)
        {
            long size = FileStatus.Of(fd) is FileStatus st ? st.Size : long.MaxValue;
            long bytes = 0, count = 0;
            foreach (RawExtent e in Read(fd, path, 0, ulong.MaxValue, sync: false))
            {
                if ((e.Flags & ExtentFlags.Shared) != 0)
                {
                    bytes += FileBytes(e, size);
                    count++;
                }
            }

            return (bytes, count);
        }

        /// <summary>
        /// The bytes preallocated past the end of a file of <paramref name="size"/> bytes (fallocate -n, FALLOC_FL_KEEP_SIZE:
        /// unwritten extents there), which a copy that preallocates like its source (<see cref="DataCopy"/>) allocates again.
        /// </summary>
        internal static long PreallocatedPastEnd(OpenFile file, long size)
        {
            ArgumentNullException.ThrowIfNull(file);
            long bytes = 0;
            foreach (RawExtent e in Read(file, (ulong)Math.Max(0, size), ulong.MaxValue, sync: false))
            {
                if ((e.Flags & ExtentFlags.Unwritten) != 0 && e.End > (ulong)size)
                {
                    bytes += (long)Math.Min(e.End - Math.Max(e.Logical, (ulong)size), long.MaxValue);
                }
            }

            return bytes;
        }

        /// <summary>The bytes of <paramref name="e"/> within a file of <paramref name="size"/> bytes (none past its end).</summary>
        internal static long FileBytes(in RawExtent e, long size) => Math.Max(0, Math.Min(e.FileEnd, size) - (long)Math.Min(e.Logical, long.MaxValue));

        private static IEnumerable<RawExtent> ReadIterator(SafeFileDescriptor file, string path, ulong start, ulong end, uint flags, int pageExtents, bool clip)
        {
            // Two fixed buffers: while the caller consumes one page, the next is fetched on another
            // thread, so the kernel's work overlaps the caller's. Files of one page never start a task.
            // Pooled, so measuring many small files does not allocate two buffers per file.
            int bytes = HeaderSize + (pageExtents * ExtentSize);
            byte[] current = ArrayPool<byte>.Shared.Rent(bytes);
            byte[] spare = ArrayPool<byte>.Shared.Rent(bytes);
            ulong rangeStart = start;
            bool emitted = false;
            ulong emittedEnd = 0;
            Task<int>? prefetch = null;
            try
            {
                int mapped = Fetch(file, path, current, start, end - start, flags, (uint)pageExtents);
                while (mapped > 0)
                {
                    // Where the next page starts is known before this one is consumed.
                    // FIEMAP_EXTENT_LAST marks the file's final extent, which is the last one returned.
                    RawExtent lastOfPage = ReadExtent(current, mapped - 1);
                    bool last = (lastOfPage.Flags & ExtentFlags.Last) != 0;
                    ulong next = lastOfPage.End;
                    bool more = !last && next > start && next < end; // no progress (zero-length delalloc): never ask twice

                    // FIEMAP_FLAG_SYNC flushed the whole file on the first call; later pages need not repeat it.
                    uint pageFlags = flags & ~Libc.FIEMAP_FLAG_SYNC;
                    if (more && mapped == pageExtents)
                    {
                        // A full page: likely more to come, so fetch it while this one is consumed.
                        byte[] target = spare;
                        prefetch = Task.Run(() => Fetch(file, path, target, next, end - next, pageFlags, (uint)pageExtents));
                    }

                    for (int i = 0; i < mapped; i++)
                    {
                        RawExtent extent = ReadExtent(current, i);
                        if (emitted && extent.Logical < emittedEnd)
                        {
                            continue; // overlaps what an earlier page already returned
                        }

                        emitted = true;
                        emittedEnd = extent.End;
                        yield return clip ? ClipToRange(extent, rangeStart, end) : extent;
                    }

                    if (!more)
                    {
                        yield break;
                    }

                    // A short page usually means the range is done; the next call (after the page was
                    // consumed, so an error cannot hide it) confirms with 0 extents.
                    mapped = prefetch is null
                        ? Fetch(file, path, spare, next, end - next, pageFlags, (uint)pageExtents)
                        : prefetch.GetAwaiter().GetResult();
                    prefetch = null;
                    (current, spare) = (spare, current);
                    start = next;
                }
            }
            finally
            {
                // The caller stopped early (or failed): let an in-flight ioctl finish before the file can be closed.
                if (prefetch is not null)
                {
                    try
                    {
                        prefetch.Wait();
                    }
                    catch (AggregateException)
                    {
                        // Nobody wants that page any more.
                    }
                }

                ArrayPool<byte>.Shared.Return(current);
                ArrayPool<byte>.Shared.Return(spare);
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

            const ExtentFlags notByteAddressed = ExtentFlags.Encoded | ExtentFlags.Unknown | ExtentFlags.NotAligned;
            bool movable = e.Physical != 0 && (e.Flags & notByteAddressed) == 0;
            ulong physical = movable ? e.Physical + (lo - e.Logical) : e.Physical;
            return new RawExtent(lo, physical, hi - lo, e.Flags);
        }

        /// <summary>
        /// Writes back the file's dirty pages and lets the filesystem place them (FIEMAP_FLAG_SYNC in count-only
        /// mode: btrfs waits for its ordered extents, iomap filesystems for the writeback), so that a later map
        /// shows where the data now is. Until then a range overwritten in the page cache still maps to its old
        /// extent. Quick for a file without dirty pages. A failure is left to the map that follows to report.
        /// </summary>
        internal static unsafe void WriteBack(OpenFile file)
        {
            var header = new Libc.Fiemap { Start = 0, Length = 1, Flags = Libc.FIEMAP_FLAG_SYNC, ExtentCount = 0 };
            _ = Libc.Ioctl(file.Handle, Libc.FS_IOC_FIEMAP, &header);
        }

        /// <summary>The number of extents in [start, start + length): FIEMAP's count-only mode (fm_extent_count = 0).</summary>
        internal static long Count(OpenFile file, ulong start, ulong length) => Count(file.Handle, file.Path, start, length);

        /// <summary>Whether the file's filesystem answers FIEMAP (tmpfs does not: EOPNOTSUPP); other errors are thrown.</summary>
        internal static bool Supported(OpenFile file)
        {
            try
            {
                Count(file, 0, 1);
                return true;
            }
            catch (FileOperationException ex) when (ex.Kind == FileErrorKind.NotSupported)
            {
                return false;
            }
        }

        /// <summary>As <see cref="Count(OpenFile, ulong, ulong)"/>, for a descriptor.</summary>
        internal static unsafe long Count(SafeFileDescriptor fd, string path, ulong start, ulong length)
        {
            var header = new Libc.Fiemap { Start = start, Length = length, ExtentCount = 0 };
            if (Libc.Ioctl(fd, Libc.FS_IOC_FIEMAP, &header) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EFBIG && start > 0)
                {
                    return 0; // starts past the largest possible file: nothing there (see Fetch)
                }

                throw FiemapError(errno, fd, path);
            }

            return header.MappedExtents;
        }

        private static RawExtent ReadExtent(byte[] buffer, int index)
        {
            Libc.FiemapExtent fe = MemoryMarshal.Read<Libc.FiemapExtent>(buffer.AsSpan(HeaderSize + (index * ExtentSize), ExtentSize));
            return new RawExtent(fe.Logical, fe.Physical, fe.Length, (ExtentFlags)fe.Flags);
        }

        private static unsafe int Fetch(SafeFileDescriptor file, string path, byte[] buffer, ulong start, ulong length, uint flags, uint count)
        {
            var header = new Libc.Fiemap { Start = start, Length = length, Flags = flags, ExtentCount = count };
            MemoryMarshal.Write(buffer.AsSpan(0, HeaderSize), in header);
            int rc;
            fixed (byte* p = buffer)
            {
                rc = Libc.Ioctl(file, Libc.FS_IOC_FIEMAP, p);
            }

            if (rc != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EFBIG && start > 0)
                {
                    // The range starts at or past the largest file this filesystem can hold
                    // (fiemap_prep): no file has data there, as past the end of any other file.
                    return 0;
                }

                throw FiemapError(errno, file, path);
            }

            header = MemoryMarshal.Read<Libc.Fiemap>(buffer.AsSpan(0, HeaderSize));
            return (int)Math.Min(header.MappedExtents, count);
        }

        private static FileOperationException FiemapError(int errno, SafeFileDescriptor file, string path)
        {
            const string op = "FS_IOC_FIEMAP";
            if (errno is Libc.EOPNOTSUPP or Libc.ENOTTY)
            {
                string fs = Libc.FStatFs(file, out Libc.StatFs sfs) == 0 ? FileSystemType.FromMagic(sfs.Type).DisplayName : "this filesystem";
                return new FileOperationException(
                    FileErrorKind.NotSupported,
                    errno,
                    op,
                    path,
                    $"Cannot map the extents of '{path}': {fs} does not support FIEMAP ({Libc.ErrnoName(errno)}). Extent maps are available on btrfs, xfs and ext4; copy the file to one of those to inspect its layout.")
                {
                    SameForFileSystem = true, // the filesystem's refusal: one error for a tree, not one per file (a hostile test: per file on tmpfs)
                };
            }

            return FileOperationException.FromErrno(errno, op, path, "Cannot map the extents of");
        }
    }
}
