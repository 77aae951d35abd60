namespace Btrfs.Kernel
{
    using System;
    using System.Collections.Generic;
    using System.Runtime.InteropServices;
    using System.Threading;
    using System.Threading.Tasks;
    using Btrfs.Core;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>A byte range [Start, End) of a file.</summary>
    internal readonly record struct ByteRange(long Start, long End)
    {
        internal long Length => End - Start;

        /// <summary>
        /// <paramref name="start"/> + <paramref name="length"/>, at most <see cref="long.MaxValue"/> (the largest file size): a
        /// block at the last byte of a file of that size ends at 2^63, which a long cannot hold (a hostile test).
        /// </summary>
        internal static long EndOf(long start, long length) => length > long.MaxValue - start ? long.MaxValue : start + length;
    }

    /// <summary>
    /// Copies a file's data into another file with read/write only: never FICLONE or
    /// copy_file_range, whose whole point would be to share the old extents (and which fail across
    /// the NOCOW/COW line). Holes stay holes (SEEK_DATA/SEEK_HOLE), preallocated ranges are
    /// preallocated again, the size is exact. Memory is two fixed buffers whatever the file size.
    /// </summary>
    internal static class DataCopy
    {
        /// <summary>Bytes per read/write.</summary>
        internal const int ChunkSize = 4 << 20;

        /// <summary>Bytes per read of <see cref="SameData"/>: two such pieces fit in a core's cache.</summary>
        private const int CompareChunkSize = 256 << 10;

        /// <summary>
        /// The copy's writeback is started in aligned windows of this size as soon as the copy has passed
        /// one, so the disk writes while the rest is read instead of all at the final fsync (with much
        /// memory, the kernel would otherwise wait for the whole file). 128 MiB is the largest extent
        /// btrfs and ext4 allocate for one write-back, so a window never cuts an extent the final fsync
        /// would have made whole.
        /// </summary>
        internal const long WritebackWindow = 128L << 20;

        /// <summary>
        /// Data of the ranges after the one being read that is asked for ahead (posix_fadvise WILLNEED), so
        /// the device has it on its way when the copy gets there: the kernel's own read-ahead follows one range
        /// and stops at a hole. A sparse image with 1 MiB of data every 10 MiB read cold in 52-56 ms without it
        /// and 36-38 ms with 32 MiB ahead (16 MiB: 37-38 ms); a file without holes has no range after its one
        /// and is read as before.
        /// </summary>
        private const long AheadWindow = 32L << 20;

        /// <summary>
        /// The data ranges of a file up to <paramref name="size"/>, from SEEK_DATA/SEEK_HOLE. A
        /// filesystem without them reports the whole file as data, which is still correct.
        /// </summary>
        internal static IEnumerable<ByteRange> DataRanges(SafeFileDescriptor fd, long size, string path) => DataRanges(fd, 0, size, path);

        /// <summary>The data ranges of a file between <paramref name="start"/> and <paramref name="size"/> (clipped to them).</summary>
        internal static IEnumerable<ByteRange> DataRanges(SafeFileDescriptor fd, long start, long size, string path)
        {
            long pos = start;
            while (pos < size)
            {
                long data = Libc.LSeek(fd, pos, Libc.SEEK_DATA);
                if (data < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Errno.ENXIO)
                    {
                        yield break; // no data after pos
                    }

                    if (errno == Errno.EINVAL && pos == start)
                    {
                        yield return new ByteRange(start, size); // SEEK_DATA unsupported
                        yield break;
                    }

                    throw FileOperationException.FromErrno(errno, "lseek(SEEK_DATA)", path, "Cannot read the layout of");
                }

                if (data >= size)
                {
                    yield break;
                }

                long hole = Libc.LSeek(fd, data, Libc.SEEK_HOLE);
                if (hole < 0 && Marshal.GetLastPInvokeError() == 0)
                {
                    // btrfs puts the hole after data that reaches a file's last possible byte at 2^63 (the block's end), which
                    // comes back negative with no error: the data goes on to the end (before: "Cannot read the layout of
                    // ...: Success"; a hostile test).
                    hole = long.MaxValue;
                }

                if (hole < 0)
                {
                    throw FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), "lseek(SEEK_HOLE)", path, "Cannot read the layout of");
                }

                long end = Math.Min(hole, size);
                if (end <= data)
                {
                    yield break; // cannot make progress: the file shrank under us; the change check will catch it
                }

                yield return new ByteRange(data, end);
                pos = end;
            }
        }

        /// <summary>
        /// The free space a whole copy of <paramref name="source"/> (holding <paramref name="dataBytes"/> of data) takes:
        /// its data, or what the source has allocated up to its end (its preallocated ranges are preallocated again),
        /// whichever is more, and what it has preallocated past its end (<paramref name="preallocatedPastEnd"/>), which is
        /// preallocated again too, before the data goes in. (Before, that last part was left out: a 1 MiB file with 300
        /// MiB preallocated past its end passed as needing 1 MiB and ran out of space at once; a hostile review.)
        /// </summary>
        internal static long SpaceNeeded(OpenFile source, long dataBytes, out long preallocatedPastEnd)
        {
            ArgumentNullException.ThrowIfNull(source);
            preallocatedPastEnd = source.FileSystem.Kind is FileSystemKind.Btrfs or FileSystemKind.Xfs or FileSystemKind.Ext4 ? Fiemap.PreallocatedPastEnd(source, source.Size) : 0;
            long upToEnd = Math.Min(Math.Max(0, source.Status.AllocatedBytes - preallocatedPastEnd), source.Size);
            return SizeFormatter.AddSize(Math.Max(dataBytes, upToEnd), preallocatedPastEnd);
        }

        /// <summary>" (N of it preallocated past the end of the file, as <paramref name="whose"/> has it)", or nothing where none is: said after a <see cref="SpaceNeeded"/> figure.</summary>
        internal static string PreallocatedPastEndNote(long preallocatedPastEnd, string whose) =>
            preallocatedPastEnd > 0 ? $" ({SizeFormatter.Format(preallocatedPastEnd)} of it preallocated past the end of the file, as {whose} has it)" : string.Empty;

        /// <summary>Bytes of data (not holes) in the file.</summary>
        internal static long DataBytes(SafeFileDescriptor fd, long size, string path)
        {
            long total = 0;
            foreach (ByteRange r in DataRanges(fd, size, path))
            {
                total += r.Length;
            }

            return total;
        }

        /// <summary>
        /// Copies the data ranges of <paramref name="source"/> (of size <paramref name="size"/>) to
        /// the same offsets of the empty file <paramref name="target"/>, preallocates what the source
        /// has preallocated, and sets the exact size. <paramref name="progress"/> gets the bytes
        /// copied so far after every chunk; <paramref name="cancel"/> is checked between chunks.
        /// <paramref name="preallocate"/> false: the caller has allocated the target already.
        /// <paramref name="ranges"/>: what to copy, when not the data ranges (SEEK_DATA/SEEK_HOLE); called
        /// twice (the copy and its read-ahead each walk them), each walk in ascending order.
        /// Returns the bytes copied.
        /// </summary>
        internal static unsafe long Copy(OpenFile source, SafeFileDescriptor target, string targetName, long size, Action<long>? progress, CancellationToken cancel, bool preallocate = true, Func<IEnumerable<ByteRange>>? ranges = null, long writebackWindow = WritebackWindow)
        {
            writebackWindow = Math.Max(writebackWindow, 1);
            ranges ??= () => DataRanges(source.Handle, size, source.Path);
            if (preallocate)
            {
                PreallocateLike(source, target, targetName, size);

                // The new file has its size before the data goes in: writes that extend a file make xfs preallocate
                // past its end (speculatively), and the next write beyond a hole keeps that space as unwritten
                // extents in the hole: a file with a hole every other 4 KiB took twice its data on xfs.
                SetSize(target, targetName, size, copied: 0);
            }

            _ = Libc.PosixFadvise(source.Handle, 0, 0, Libc.POSIX_FADV_SEQUENTIAL);

            // Two buffers: the next chunk is read on another thread while this one is written, so
            // the copy takes about as long as the slower of reading and writing, not their sum.
            using AlignedBuffer first = AlignedBuffer.Rent(ChunkSize), second = AlignedBuffer.Rent(ChunkSize);
            byte* current = first.Pointer;
            byte* spare = second.Pointer;
            Task<int>? pending = null;

            // Starting a window's writeback blocks while the kernel submits it (50-150 ms per 256 MiB on the
            // loop devices here): on a thread of its own, so the next read is not held up by it (an xfs copy
            // of 256 MiB took 0.54-0.64 s this way against 0.62-0.68 s; ConvertTo-NoCow of 1 GiB on btrfs,
            // medians of 8 run alternately, 1.48 s against 1.59 s).
            Task? writeback = null;
            try
            {
                long copied = 0;
                long unsynced = 0; // start of the first window whose writeback has not been started
                using IEnumerator<ByteRange> chunks = Chunks(ranges()).GetEnumerator();
                using var ahead = new ReadAhead(source.Handle, ranges());
                if (chunks.MoveNext())
                {
                    ByteRange chunk = chunks.Current;
                    ahead.Advise(chunk);
                    int got = ReadFully(source.Handle, current, (int)chunk.Length, chunk.Start, source.Path);
                    while (true)
                    {
                        cancel.ThrowIfCancellationRequested();
                        bool more = got == chunk.Length && chunks.MoveNext();
                        ByteRange next = more ? chunks.Current : default;
                        if (more)
                        {
                            ahead.Advise(next);
                            nint into = (nint)spare;
                            pending = Task.Run(() => ReadFully(source.Handle, (byte*)into, (int)next.Length, next.Start, source.Path));
                        }

                        if (got > 0)
                        {
                            WriteFully(target, current, got, chunk.Start, targetName, copied, size);
                            copied += got;
                            progress?.Invoke(copied);
                            long passed = (chunk.Start + got) / writebackWindow * writebackWindow;
                            if (passed > unsynced)
                            {
                                writeback?.GetAwaiter().GetResult();
                                long from = unsynced, length = passed - unsynced;
                                writeback = Task.Run(() => Files.StartWriteback(target, from, length));
                                unsynced = passed;
                            }
                        }

                        if (!more)
                        {
                            break; // done, or the file shrank: the change check after the copy reports it
                        }

                        got = pending!.GetAwaiter().GetResult();
                        pending = null;
                        byte* swap = current;
                        current = spare;
                        spare = swap;
                        chunk = next;
                    }
                }

                SetSize(target, targetName, size, copied);

                return copied;
            }
            finally
            {
                // A read still in flight (an error or a cancellation stopped the writer) must finish
                // before its buffer is freed.
                if (pending is not null)
                {
                    try
                    {
                        pending.Wait();
                    }
                    catch (AggregateException)
                    {
                        // Nobody wants that chunk any more.
                    }
                }

                // The caller may close the target as soon as this returns. Starting writeback reports
                // nothing (the caller's fsync does), so this wait cannot hide the error that got us here.
                writeback?.Wait();
            }
        }

        /// <summary>
        /// Asks for the data of the ranges after the one being read, <see cref="AheadWindow"/> bytes at most
        /// ahead (a hint: failures are ignored), from a second walk of the ranges (lseek with explicit offsets,
        /// so it does not disturb the copy's own).
        /// </summary>
        private sealed class ReadAhead : IDisposable
        {
            private readonly SafeFileDescriptor fd;
            private readonly IEnumerator<ByteRange> ranges;
            private readonly Queue<ByteRange> advised = new();
            private long advisedBytes;
            private bool done;

            internal ReadAhead(SafeFileDescriptor fd, IEnumerable<ByteRange> ranges)
            {
                this.fd = fd;
                this.ranges = ranges.GetEnumerator();
            }

            /// <summary>The copy is about to read <paramref name="reading"/>.</summary>
            internal void Advise(ByteRange reading)
            {
                while (advised.Count > 0 && advised.Peek().Start < reading.End)
                {
                    advisedBytes -= advised.Dequeue().Length; // being read now, or read
                }

                while (!done && advisedBytes < AheadWindow)
                {
                    bool more;
                    try
                    {
                        more = ranges.MoveNext();
                    }
                    catch (FileOperationException)
                    {
                        more = false; // the copy's own walk of the ranges reports it
                    }

                    if (!more)
                    {
                        done = true;
                        break;
                    }

                    ByteRange r = ranges.Current;
                    if (r.Start < reading.End)
                    {
                        continue; // read, or the range being read: the kernel's read-ahead follows it
                    }

                    long length = Math.Min(r.Length, AheadWindow - advisedBytes);
                    Files.AdviseWillNeed(fd, r.Start, length);
                    advised.Enqueue(new ByteRange(r.Start, r.Start + length));
                    advisedBytes += length;
                }
            }

            public void Dispose() => ranges.Dispose();
        }

        /// <summary>The data ranges cut into chunks of at most <see cref="ChunkSize"/> bytes.</summary>
        private static IEnumerable<ByteRange> Chunks(IEnumerable<ByteRange> ranges)
        {
            foreach (ByteRange range in ranges)
            {
                for (long pos = range.Start; pos < range.End;)
                {
                    long end = Math.Min(ByteRange.EndOf(pos, ChunkSize), range.End); // no overflow at a file's last byte
                    yield return new ByteRange(pos, end);
                    pos = end;
                }
            }
        }

        /// <summary>
        /// Compares the data ranges of <paramref name="source"/> with the same ranges of
        /// <paramref name="copy"/> byte for byte; the rest of the copy is holes by construction.
        /// </summary>
        internal static unsafe bool SameData(OpenFile source, SafeFileDescriptor copy, string copyName, long size, CancellationToken cancel)
        {
            // 256 KiB at a time: both pieces are still in the CPU's cache when they are compared (with
            // 4 MiB pieces the comparison read them back from memory, and took 68-138 ms for 100 MiB
            // against the 62-73 ms of the fsync it runs beside).
            using AlignedBuffer first = AlignedBuffer.Rent(CompareChunkSize), second = AlignedBuffer.Rent(CompareChunkSize);
            byte* a = first.Pointer;
            byte* b = second.Pointer;
            foreach (ByteRange range in DataRanges(source.Handle, size, source.Path))
            {
                for (long pos = range.Start; pos < range.End;)
                {
                    cancel.ThrowIfCancellationRequested();
                    int want = (int)Math.Min(CompareChunkSize, range.End - pos);
                    int ga = ReadFully(source.Handle, a, want, pos, source.Path);
                    int gb = ReadFully(copy, b, want, pos, copyName);
                    if (ga != gb || !new ReadOnlySpan<byte>(a, ga).SequenceEqual(new ReadOnlySpan<byte>(b, gb)))
                    {
                        return false;
                    }

                    if (ga == 0)
                    {
                        break;
                    }

                    pos += ga;
                }
            }

            return true;
        }

        /// <summary>
        /// Gives the target its size, only where it does not have it yet: btrfs, xfs and ext4 truncate at the size even
        /// when it does not change, and with it the preallocation past the end (fallocate -n) that
        /// <see cref="PreallocateLike"/> made again.
        /// </summary>
        private static void SetSize(SafeFileDescriptor target, string targetName, long size, long copied)
        {
            if ((FileStatus.Of(target)?.Size ?? -1) != size && Libc.FTruncate(target, size) != 0)
            {
                throw Failure(Marshal.GetLastPInvokeError(), "ftruncate", targetName, copied, size);
            }
        }

        /// <summary>Preallocates the target where the source has unwritten (preallocated) extents, beyond EOF included.</summary>
        private static void PreallocateLike(OpenFile source, SafeFileDescriptor target, string targetName, long size)
        {
            if (source.FileSystem.Kind is not (FileSystemKind.Btrfs or FileSystemKind.Xfs or FileSystemKind.Ext4))
            {
                return; // as SpaceNeeded counts
            }

            foreach (RawExtent e in Fiemap.Read(source, 0, ulong.MaxValue, sync: false))
            {
                if ((e.Flags & ExtentFlags.Unwritten) == 0)
                {
                    continue;
                }

                int mode = e.FileEnd > size ? Libc.FALLOC_FL_KEEP_SIZE : 0;
                if (Libc.FAllocate(target, mode, (long)e.Logical, (long)e.Length) != 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno is Errno.EOPNOTSUPP)
                    {
                        return; // a copy without preallocation is still a faithful copy of the data
                    }

                    throw Failure(errno, "fallocate", targetName, 0, size, $"while preallocating {SizeFormatter.Format((long)Math.Min(e.Length, long.MaxValue))} at offset {e.Logical} as the original has it preallocated, before any data was copied");
                }
            }
        }

        private static unsafe int ReadFully(SafeFileDescriptor fd, byte* buffer, int count, long offset, string path)
        {
            int done = 0;
            while (done < count)
            {
                nint n = Libc.PRead(fd, buffer + done, (nuint)(count - done), offset + done);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Errno.EINTR)
                    {
                        continue;
                    }

                    throw FileOperationException.FromErrno(errno, "pread", path, "Cannot read");
                }

                if (n == 0)
                {
                    break;
                }

                done += (int)n;
            }

            return done;
        }

        private static unsafe void WriteFully(SafeFileDescriptor fd, byte* buffer, int count, long offset, string name, long copied, long size)
        {
            int done = 0;
            while (done < count)
            {
                nint n = Libc.PWrite(fd, buffer + done, (nuint)(count - done), offset + done);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Errno.EINTR)
                    {
                        continue;
                    }

                    throw Failure(errno, "pwrite", name, copied + done, size);
                }

                done += (int)n;
            }
        }

        /// <summary>A failure while writing the copy: the original has not been touched.</summary>
        internal static FileOperationException Failure(int errno, string operation, string name, long copied, long size, string? where = null)
        {
            where ??= $"after copying {SizeFormatter.Format(copied)} of {SizeFormatter.Format(size)}";
            if (errno is Errno.ENOSPC or Errno.EDQUOT)
            {
                return new FileOperationException(
                    FileErrorKind.InsufficientSpace,
                    errno,
                    operation,
                    name,
                    errno == Errno.EDQUOT
                        ? $"A quota ran out of room {where} into the new copy of '{name}' (EDQUOT). The original is unchanged and the partial copy was removed. {FileOperationException.NoRoom(errno).Replace(" left for it", string.Empty, StringComparison.Ordinal)}, and try again."
                        : $"The filesystem ran out of space {where} into the new copy of '{name}' ({Libc.ErrnoName(errno)}). The original is unchanged and the partial copy was removed. Free some space and try again.");
            }

            return new FileOperationException(
                FileOperationException.KindOf(errno),
                errno,
                operation,
                name,
                $"Cannot write the new copy of '{name}' {where}: {Libc.StrError(errno)} ({operation}: {Libc.ErrnoName(errno)}). The original is unchanged and the partial copy was removed.");
        }
    }
}
