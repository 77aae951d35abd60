namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Threading;
    using Btrfs.Kernel;

    /// <summary>The outcome of deduplicating one destination against a source.</summary>
    public enum DedupeStatus
    {
        /// <summary>Ranges that held the same bytes now share extents.</summary>
        Deduped,

        /// <summary>The ranges already pointed at the same extents: the kernel was not asked.</summary>
        AlreadyShared,

        /// <summary>The kernel compared the bytes and some differ: those ranges were left as they are.</summary>
        Differs,

        /// <summary>The kernel refused; ErrorMessage says why.</summary>
        Error,

        /// <summary>
        /// A group from Find-BtrfsDuplicate left as it is: sharing it would free no disk space (every other
        /// range is marked FreesNothing), only split extents. -IncludeUnreclaimable shares it anyway.
        /// </summary>
        NothingToFree,
    }

    /// <summary>Invoke-BtrfsDedupe's result: one per destination. Every property is a scalar.</summary>
    public sealed class DedupeResult
    {
        /// <summary>The source file.</summary>
        public string Source { get; init; } = string.Empty;

        /// <summary>The destination file.</summary>
        public string Destination { get; init; } = string.Empty;

        /// <summary>Bytes asked to deduplicate.</summary>
        public long BytesRequested { get; init; }

        /// <summary>Bytes the kernel deduplicated (they now share extents with the source).</summary>
        public long BytesDeduped { get; init; }

        /// <summary>Bytes that already shared the source's extents (skipped without asking the kernel).</summary>
        public long BytesAlreadyShared { get; init; }

        /// <summary>Bytes in ranges whose content differs (left as they are).</summary>
        public long BytesDiffering { get; init; }

        /// <summary>Deduped, AlreadyShared, Differs or Error.</summary>
        public DedupeStatus Status { get; init; }

        /// <summary>With Error: what the kernel said and what it means.</summary>
        public string? ErrorMessage { get; init; }

        /// <summary>FIDEDUPERANGE calls made (0 when everything was shared already).</summary>
        internal int KernelCalls { get; init; }

        /// <summary>With Error: the errno.</summary>
        internal int Errno { get; init; }

        /// <summary>
        /// With Error: the error to report for the destination. Its bytes are unchanged; what was deduplicated before the
        /// error shares the source's extents now, and is said so (before: "The destination is unchanged" after 32 MiB of
        /// it had been deduplicated; a hostile review).
        /// </summary>
        internal FileOperationException? Error => Status == DedupeStatus.Error
            ? new FileOperationException(
                Errno == Kernel.Errno.EXDEV ? FileErrorKind.CrossFileSystem : FileOperationException.KindOf(Errno),
                Errno,
                "FIDEDUPERANGE",
                Destination,
                $"Cannot deduplicate '{Destination}' against '{Source}': {ErrorMessage} " + (BytesDeduped == 0
                    ? "The destination is unchanged."
                    : $"Before that, {BytesDeduped} bytes of it were deduplicated (they share the source's extents now); the rest is as it was. Its data is unchanged."))
            : null;
    }

    /// <summary>
    /// Invoke-BtrfsDedupe's Core: FIDEDUPERANGE in chunks (the kernel compares the bytes and shares
    /// them only when equal; btrfs does at most 16 MiB per call), after skipping every chunk whose
    /// source and destination already map to the same extents (FIEMAP), so a second run asks the kernel
    /// nothing. Dedupe never changes the data of either file.
    /// </summary>
    public static class Deduplicator
    {
        /// <summary>Bytes per call: btrfs's BTRFS_MAX_DEDUPE_LEN.</summary>
        public const long ChunkSize = 16L << 20;

        /// <summary>Refuses a destination that is the source itself (another name for it, or a link to it).</summary>
        internal static void RefuseSameFile(OpenFile source, string destination) =>
            FileGuards.RefuseSameFile(source, FileStatus.OfPath(destination, followLinks: true), destination, "deduplicate {0} against itself");

        /// <summary>
        /// The refusal for a file that is not the one searched: another inode, or the same inode number on another
        /// device (a snapshot's copy of it, reached through a directory swapped for a link); null when it is
        /// (a 0 in <paramref name="expected"/> is not checked).
        /// </summary>
        internal static FileOperationException? Replaced(OpenFile file, (ulong Device, ulong Inode, uint Generation) expected)
        {
            if ((expected.Inode != 0 && file.Status.Inode != expected.Inode) || (expected.Device != 0 && file.Status.Device != expected.Device))
            {
                return new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "statx", file.Path, $"Cannot deduplicate '{file.Path}': the name leads to another file (inode {file.Status.Inode} on device {file.Status.DevMajor}:{file.Status.DevMinor}) than the one searched (inode {expected.Inode}{(expected.Device != 0 ? " on device " + FileStatus.DeviceName(expected.Device) : string.Empty)}). It was left as it is; search again.");
            }

            // The same number, but a file made after the one searched was deleted (xfs gives a freed number to the next file).
            if (expected.Generation != 0 && InodeAttributes.TryGetGeneration(file.Handle) is uint now && now != expected.Generation)
            {
                return new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "FS_IOC_GETVERSION", file.Path, $"Cannot deduplicate '{file.Path}': the name leads to another file than the one searched (inode {file.Status.Inode} again, but of generation {now}, not {expected.Generation}: the file searched was deleted and this one made since). It was left as it is; search again.");
            }

            return null;
        }

        /// <summary>What happened, from what the kernel said: an error, then any difference, then anything shared, else everything was shared already.</summary>
        internal static DedupeStatus StatusOf(bool failed, long differing, long deduped) =>
            failed ? DedupeStatus.Error : differing > 0 ? DedupeStatus.Differs : deduped > 0 ? DedupeStatus.Deduped : DedupeStatus.AlreadyShared;

        /// <summary>
        /// Deduplicates [<paramref name="offset"/>, +<paramref name="length"/>) of
        /// <paramref name="source"/> with the same bytes of <paramref name="destination"/> at
        /// <paramref name="destinationOffset"/>. Refusals of the kernel come back as a result with
        /// Status Error; a destination that cannot be opened throws <see cref="FileOperationException"/>.
        /// </summary>
        internal static DedupeResult Dedupe(OpenFile source, string destination, long offset, long? length, long destinationOffset, Action<long>? progress = null, CancellationToken cancel = default, (ulong Device, ulong Inode, uint Generation) expected = default)
        {
            ArgumentNullException.ThrowIfNull(source);
            using OpenFile dest = OpenFile.Open(destination, OpenOptions.NoFollow);
            return Dedupe(source, dest, offset, length, destinationOffset, SwapTable.Read(), progress, cancel, expected);
        }

        /// <summary>
        /// As <see cref="Dedupe(OpenFile, string, long, long?, long, Action{long}?, CancellationToken, ulong)"/>
        /// with the destination open already and the active swapfiles read already (a group's ranges share
        /// one reading of /proc/swaps: the kernel itself refuses to remap an active swapfile, ETXTBSY).
        /// </summary>
        internal static DedupeResult Dedupe(OpenFile source, OpenFile dest, long offset, long? length, long destinationOffset, SwapTable swaps, Action<long>? progress = null, CancellationToken cancel = default, (ulong Device, ulong Inode, uint Generation) expected = default, bool fromGroup = false)
        {
            (long requested, long block) = Check(source, dest, offset, length, destinationOffset, swaps, expected, fromGroup);

            // What a file holds in the page cache and not yet on disk still maps to the extent it replaces: written
            // back first, or an overwritten range of a reflinked copy would pass for "already shared" (a hostile
            // review). The kernel writes both ranges back before comparing anyway.
            Fiemap.WriteBack(source);
            Fiemap.WriteBack(dest);
            return Run(source, dest, offset, destinationOffset, requested, block, progress, cancel);
        }

        /// <summary>
        /// Everything that refuses a deduplication before the kernel is asked (another file than the one searched, an
        /// active swapfile, ranges the kernel would not take): thrown, nothing changed. Returns the bytes to ask for
        /// (whole blocks, or a last partial block where it ends both files) and the block size, so a preview (-WhatIf)
        /// says what the run would do, or its refusal (a hostile review: -WhatIf promised a missing file, a directory,
        /// a FIFO, an empty file, and 2 MiB of a 1 MiB one).
        /// </summary>
        internal static (long Requested, long Block) Check(OpenFile source, OpenFile dest, long offset, long? length, long destinationOffset, SwapTable swaps, (ulong Device, ulong Inode, uint Generation) expected = default, bool fromGroup = false)
        {
            ArgumentNullException.ThrowIfNull(source);
            ArgumentNullException.ThrowIfNull(dest);
            if (Replaced(dest, expected) is FileOperationException replaced)
            {
                throw replaced; // the name leads to another file than the one meant (replaced since it was found): not touched
            }

            // A file on a filesystem without FIEMAP (tmpfs and the like, which cannot share extents either) is refused here,
            // as the destination's error, before either file is read: before, the source's missing FIEMAP was the error
            // for every destination (target: the source, advice from another cmdlet), even where the two were on
            // different filesystems (a hostile review). Every filesystem with FIEMAP goes to the kernel, whose refusal
            // (ext4's EOPNOTSUPP, two filesystems' EXDEV) is a result.
            // Two filesystems (EXDEV) are refused here too, before any other check (a preview promised them, and a
            // range of less than one block was refused as such rather than as on another filesystem: a hostile review).
            if (OnDifferentFileSystems(source, dest))
            {
                throw new FileOperationException(
                    FileErrorKind.CrossFileSystem,
                    Errno.EXDEV,
                    "FIDEDUPERANGE",
                    dest.Path,
                    $"Cannot deduplicate '{dest.Path}' against '{source.Path}': they are on different filesystems ({source.FileSystem.DisplayName} and {dest.FileSystem.DisplayName}), and extents are shared only within one btrfs or one xfs made with reflink=1. Nothing was changed.");
            }

            // ext4, and an xfs made without reflink, have FIEMAP but share no extents: refused here too, so a preview says
            // it rather than promising bytes the run's kernel call then refuses (a hostile review: -WhatIf on ext4 said
            // "1.00 MiB to deduplicate", the run EOPNOTSUPP). The two files are on one filesystem by now.
            if (!MapsExtents(source) || !MapsExtents(dest) || SharesNoExtents(dest))
            {
                throw new FileOperationException(
                    FileErrorKind.NotSupported,
                    Errno.EOPNOTSUPP,
                    "FIDEDUPERANGE",
                    dest.Path,
                    $"Cannot deduplicate '{dest.Path}': {(dest.FileSystem.Kind == FileSystemKind.Xfs ? "this xfs was made without reflink, and" : dest.FileSystem.DisplayName)} cannot share extents (deduplication works on btrfs and on xfs made with reflink=1). Nothing was changed.");
            }

            // The kernel refuses an immutable destination (EPERM, even for root); an append-only one it deduplicates
            // (the bytes stay the same). Said as what it is, as New-BtrfsReflink says it (before: AccessDenied).
            if (((InodeAttributes.TryGet(dest.Handle, dest.Path) ?? InodeFlags.None) & InodeFlags.Immutable) != 0)
            {
                throw new FileOperationException(
                    FileErrorKind.Immutable,
                    Errno.EPERM,
                    "FS_IOC_GETFLAGS",
                    dest.Path,
                    $"Cannot deduplicate '{dest.Path}': it is immutable (chattr +i), which the kernel does not change even to share equal bytes. It was left as it is; clear the attribute first (chattr -i, as root) if it should share.");
            }

            FileGuards.ThrowIfReadOnlyMount(dest, "deduplicate"); // the kernel shares no extents into a file there, for root neither

            // The kernel deduplicates into a file opened read-only (as here) only for root (CAP_SYS_ADMIN), the file's
            // owner, or a user who may write it (may_dedupe_file): refused as it would refuse it, before a preview counts
            // it (a hostile review: as nobody, -WhatIf promised 12 MiB and the run freed 4 MiB, with two AccessDenied).
            if (!MayDedupeInto(dest))
            {
                throw new FileOperationException(
                    FileErrorKind.AccessDenied,
                    Errno.EPERM,
                    "FIDEDUPERANGE",
                    dest.Path,
                    $"Cannot deduplicate '{dest.Path}': the kernel shares extents into a file only for its owner (uid {dest.Status.Uid}), a user who may write it (mode {Convert.ToString(dest.Status.Permissions, 8).PadLeft(4, '0')}; in a read-only snapshot no one may), or root. It was left as it is; run it as the owner or as root.");
            }

            FileGuards.ThrowIfSwapfile(source, "deduplicate {0}", swaps);
            FileGuards.ThrowIfSwapfile(dest, "deduplicate {0}", swaps);

            // btrfs shares no extents between a file with checksums and one without (EINVAL; it compares the NODATASUM
            // flags): a NOCOW file has none, nor has one written while the filesystem was mounted nodatasum. Refused
            // before a preview promises it (a hostile review) where both are certain (ChecksumState); otherwise left to
            // the kernel, whose refusal is a result. After the refusals that say more: an active swapfile is NOCOW, and
            // is said as a swapfile (the run of the whole suite caught it).
            if (source.FileSystem.Kind == FileSystemKind.Btrfs)
            {
                bool sourceBare = ChecksumState.Absent(source, search: true, out bool sourceByFlag), destBare = ChecksumState.Absent(dest, search: true, out bool destByFlag);
                bool certain = !sourceByFlag && !destByFlag && MountTable.Current().For(dest)?.HasOption("nodatasum") != true;
                if (sourceBare != destBare && !certain && Files.TrySyncFileSystem(dest.Handle) == 0)
                {
                    // Told by an inode item, which lags behind the inode until the next commit, or on a nodatasum mount
                    // where a new file may not be in the tree yet: committed, and asked again; the items are the inodes' now.
                    sourceBare = ChecksumState.Absent(source, search: true, out _);
                    destBare = ChecksumState.Absent(dest, search: true, out _);
                    certain = true;
                }

                if (sourceBare != destBare && certain)
                {
                    string which = sourceBare ? $"the source '{source.Path}' has no checksums and the destination has" : $"the destination has no checksums and the source '{source.Path}' has";
                    throw new FileOperationException(
                        FileErrorKind.InvalidArgument,
                        Errno.EINVAL,
                        "FIDEDUPERANGE",
                        dest.Path,
                        $"Cannot deduplicate '{dest.Path}': {which} (a NOCOW file has none, nor has one written while the filesystem was mounted nodatasum), and btrfs shares no extents between such files. Nothing was changed; make them alike first (ConvertTo-NoCow or ConvertFrom-NoCow) if they should share.");
                }
            }

            if ((fromGroup || expected != default) && length is long want)
            {
                // A group's range that reaches past a file's end now: the file shrank since the search (before: what was
                // left was deduplicated and the rest left out of the figures without a word; a hostile review).
                ThrowIfShrunk(source, offset, want);
                ThrowIfShrunk(dest, destinationOffset, want);
            }

            // A group made by hand carries no inode (expected is unset): still a group's range, said as one (before: a
            // message about -DestinationOffset, which a group has not; a hostile review).
            bool grouped = fromGroup || expected != default;
            long block = ThrowUnlessAligned(source, dest, offset, length, destinationOffset, fromGroup: grouped);
            long requested = Math.Max(0, Math.Min(length ?? long.MaxValue, Math.Min(source.Size - offset, dest.Size - destinationOffset)));
            if (requested == 0 && length is not 0)
            {
                throw NothingInRange(source, dest, offset, destinationOffset, grouped);
            }

            if (source.Status.SameInode(dest.Status) && offset != destinationOffset && offset < destinationOffset + requested && destinationOffset < offset + requested)
            {
                throw new FileOperationException(
                    FileErrorKind.InvalidArgument,
                    Errno.EINVAL,
                    "FIDEDUPERANGE",
                    dest.Path,
                    $"Cannot deduplicate '{dest.Path}' with itself: the range at {offset} and the one at {destinationOffset} ({requested} bytes each) overlap, and the kernel refuses overlapping ranges of one file (EINVAL). Give ranges that do not overlap. Nothing was changed.");
            }

            long partial = requested % block;
            bool shares = source.FileSystem.Kind is FileSystemKind.Btrfs or FileSystemKind.Xfs; // elsewhere the kernel's own refusal says more
            if (shares && partial != 0 && (offset + requested != source.Size || destinationOffset + requested != dest.Size))
            {
                // The kernel shares a last partial block only where it ends both files; anywhere else it takes
                // the whole blocks alone and still reports the whole length as deduplicated. Asked for whole blocks.
                requested -= partial;
                if (requested == 0)
                {
                    throw PartialBlockOnly(source, dest, offset, partial, block, grouped);
                }
            }

            return (requested, block);
        }

        /// <summary>
        /// Whether the two files are on different filesystems (the kernel's EXDEV: not the same superblock): of different
        /// kinds, two btrfs of different ids (one btrfs's subvolumes have devices of their own), or two devices elsewhere.
        /// </summary>
        private static bool OnDifferentFileSystems(OpenFile a, OpenFile b) =>
            a.FileSystem.Kind != b.FileSystem.Kind
            || (a.FileSystem.Kind == FileSystemKind.Btrfs
                ? BtrfsSearch.FileSystemId(a) is Guid x && BtrfsSearch.FileSystemId(b) is Guid y && x != y
                : a.Status.DevMajor != b.Status.DevMajor || a.Status.DevMinor != b.Status.DevMinor);

        /// <summary>A filesystem that cannot share extents although it maps them: ext4, and xfs without reflink (its geometry says so; where unreadable, left to the kernel).</summary>
        internal static bool SharesNoExtents(OpenFile file) => file.FileSystem.Kind == FileSystemKind.Ext4
            || (file.FileSystem.Kind == FileSystemKind.Xfs && XfsExchange.TryFeatures(file.Handle) is XfsFeatures f && !f.HasFlag(XfsFeatures.Reflink));

        /// <summary>Whether the file's filesystem maps extents (FIEMAP): btrfs, xfs and ext4 do; another (overlayfs over one of them does, tmpfs does not) is asked.</summary>
        private static bool MapsExtents(OpenFile file) => file.FileSystem.Kind is FileSystemKind.Btrfs or FileSystemKind.Xfs or FileSystemKind.Ext4 || Fiemap.Supported(file);

        /// <summary>
        /// Whether the kernel lets this process deduplicate into <paramref name="dest"/>, open read-only (fs/remap_range.c,
        /// may_dedupe_file): CAP_SYS_ADMIN, the owner (by the filesystem uid), or write permission (by the effective ids).
        /// True where that cannot be told (the kernel still decides).
        /// </summary>
        private static bool MayDedupeInto(OpenFile dest)
        {
            if (Processes.Current() is not { } me)
            {
                return true;
            }

            // capable(CAP_SYS_ADMIN) asks the first user namespace (where no id shows as the overflow id); an owner not
            // mapped here shows as the overflow id, which is no one's; write permission as inode_permission answers it,
            // a read-only snapshot's EROFS included (a review: EROFS was taken as "may").
            const int SysAdmin = 21;
            return (me.OverflowUid is null && (me.Effective & (1UL << SysAdmin)) != 0)
                || (me.FsUid == dest.Status.Uid && dest.Status.Uid != me.OverflowUid)
                || (Files.MayWrite(dest.Directory, dest.Name, dest.Path, out int errno) && errno == 0);
        }

        private static DedupeResult Run(OpenFile source, OpenFile dest, long offset, long destinationOffset, long requested, long block, Action<long>? progress, CancellationToken cancel)
        {
            long deduped = 0, shared = 0, differing = 0, done = 0;
            int calls = 0;
            string? error = null;
            int errorErrno = 0;

            // Cost follows data: only where either file has data (a hole in both is equal already, and
            // the kernel would otherwise read and compare the zeros of every hole).
            foreach (ByteRange chunk in Chunks(DataUnion(source, offset, dest, destinationOffset, requested)))
            {
                if (error is not null)
                {
                    break;
                }

                cancel.ThrowIfCancellationRequested();
                long pos = chunk.Start;
                long n = chunk.Length;
                if (SameExtents(source, offset + pos, dest, destinationOffset + pos, n))
                {
                    shared += n;
                }
                else
                {
                    // The kernel compares page by page, reading what is not cached one page at a time: both
                    // ranges are asked for first, in large reads (after Find-BtrfsDuplicate, which reads past
                    // the cache, 413 MiB deduplicated on xfs took 2.7-3.1 s without this).
                    Files.AdviseWillNeed(source.Handle, offset + pos, n);
                    Files.AdviseWillNeed(dest.Handle, destinationOffset + pos, n);
                    Share(pos, n, findEqualRuns: true);
                }

                done += n;
                progress?.Invoke(done);
            }

            DedupeStatus result = StatusOf(error is not null, differing, deduped);

            // Shares [rel, +length) (offsets from the range's start) in as many calls as the kernel takes.
            void Share(long rel, long length, bool findEqualRuns)
            {
                for (long at = 0; at < length;)
                {
                    calls++;
                    (int errno, bool differs, long bytes) = Clone.Dedupe(source.Handle, offset + rel + at, length - at, dest.Handle, destinationOffset + rel + at);
                    if (errno != 0)
                    {
                        errorErrno = errno;
                        error = Explain(errorErrno, source, dest, offset + rel + length, destinationOffset + rel + length);
                        return;
                    }

                    if (differs)
                    {
                        // One differing block made the kernel refuse all the rest. The runs of equal blocks in it are
                        // found by reading both (cached already) and asked for one by one: the kernel compares them
                        // again before it shares anything, the reading only chooses what to ask. (Before: a VM image
                        // with one block changed in a 16 MiB chunk shared nothing of that chunk.)
                        long equal = 0;
                        if (findEqualRuns)
                        {
                            foreach (ByteRange run in EqualRuns(source, offset + rel + at, dest, destinationOffset + rel + at, length - at, block))
                            {
                                equal += run.Length;
                                if (SameExtents(source, offset + rel + at + run.Start, dest, destinationOffset + rel + at + run.Start, run.Length))
                                {
                                    shared += run.Length; // shared by an earlier run: not asked again, not counted as deduplicated now (a hostile review)
                                    continue;
                                }

                                Share(rel + at + run.Start, run.Length, findEqualRuns: false); // counts what differs in it (changed since it was read)
                                if (error is not null)
                                {
                                    return;
                                }
                            }
                        }

                        differing += length - at - equal;
                        return;
                    }

                    if (bytes <= 0)
                    {
                        return; // the kernel would not take the rest (an unaligned tail): leave it
                    }

                    bytes = Math.Min(bytes, length - at);
                    long tail = (offset + rel + at + bytes) % block;
                    if (tail != 0 && !TailShared(source, offset + rel + at + bytes, dest, destinationOffset + rel + at + bytes, tail))
                    {
                        // A file grew in between, and the kernel took the whole blocks alone (reporting the
                        // partial one as deduplicated all the same): only what now shares is counted.
                        deduped += bytes - tail;
                        if (deduped == 0 && shared == 0 && differing == 0)
                        {
                            errorErrno = Errno.EAGAIN;
                            error = $"its last {tail} bytes were no longer the end of both files when the kernel came to them (a file grew meanwhile), and the kernel shares a partial block only there: nothing was shared. Run it again.";
                        }

                        return;
                    }

                    deduped += bytes;
                    at += bytes;
                }
            }
            return new DedupeResult
            {
                Source = source.Path,
                Destination = dest.Path,
                BytesRequested = requested,
                BytesDeduped = deduped,
                BytesAlreadyShared = shared,
                BytesDiffering = differing,
                Status = result,
                ErrorMessage = error,
                KernelCalls = calls,
                Errno = errorErrno,
            };
        }

        /// <summary>The least run of equal blocks asked for after the kernel found a difference: smaller ones would cut the extents into pieces for little.</summary>
        internal const long MinimumEqualRun = 128 * 1024;

        /// <summary>
        /// The runs of whole blocks (of <paramref name="block"/> bytes) equal in both files, of at least
        /// <see cref="MinimumEqualRun"/>, in [0, <paramref name="length"/>) from the two offsets (at most
        /// <see cref="ChunkSize"/>): read and compared here; the kernel compares again before sharing.
        /// </summary>
        private static List<ByteRange> EqualRuns(OpenFile source, long sourceOffset, OpenFile dest, long destOffset, long length, long block)
        {
            var runs = new List<ByteRange>();
            int n = (int)Math.Min(length, ChunkSize);
            byte[] a = System.Buffers.ArrayPool<byte>.Shared.Rent(n), b = System.Buffers.ArrayPool<byte>.Shared.Rent(n);
            try
            {
                int m;
                try
                {
                    m = Math.Min(Files.ReadFullyAt(source.Handle, a.AsSpan(0, n), sourceOffset, source.Path), Files.ReadFullyAt(dest.Handle, b.AsSpan(0, n), destOffset, dest.Path));
                }
                catch (FileOperationException)
                {
                    return runs; // unreadable now (an I/O error): none asked for, all of it left as it is (the kernel found it different)
                }

                // A last partial block counts where it ends both files (the kernel shares it only there).
                bool endsBoth = sourceOffset + m == source.Size && destOffset + m == dest.Size;
                long start = -1;
                long x = 0;
                for (; x < m && (x + block <= m || endsBoth); x += block)
                {
                    int len = (int)Math.Min(block, m - x);
                    bool same = a.AsSpan((int)x, len).SequenceEqual(b.AsSpan((int)x, len));
                    if (same && start < 0)
                    {
                        start = x;
                    }
                    else if (!same && start >= 0)
                    {
                        AddRun(start, x, m);
                        start = -1;
                    }
                }

                if (start >= 0)
                {
                    AddRun(start, Math.Min(x, m), m);
                }
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(a);
                System.Buffers.ArrayPool<byte>.Shared.Return(b);
            }

            return runs;

            void AddRun(long from, long to, long m)
            {
                // A run at an end of the chunk may go on in the next or the last one: taken whatever its length (a
                // hostile review: a run of 192 KiB across a chunk boundary, in two short halves, was left).
                if (to - from >= MinimumEqualRun || from == 0 || to >= m)
                {
                    runs.Add(new ByteRange(from, to));
                }
            }
        }

        /// <summary>
        /// The bytes of [<paramref name="offset"/>, +<paramref name="length"/>) of <paramref name="source"/>
        /// that hold data (SEEK_DATA/SEEK_HOLE): what a dedupe reads and compares at most (holes are
        /// skipped where the destination has none either). For -WhatIf and progress.
        /// </summary>
        internal static long DataBytes(OpenFile source, long offset, long? length)
        {
            ArgumentNullException.ThrowIfNull(source);
            long end = Math.Min(source.Size, length is long l ? offset + l : long.MaxValue);
            long total = 0;
            foreach (ByteRange r in DataCopy.DataRanges(source.Handle, Math.Min(offset, end), end, source.Path))
            {
                total += r.Length;
            }

            return total;
        }

        /// <summary>
        /// The ranges (relative to the start of the requested range) where the source or the destination
        /// has data, merged, streamed: memory does not grow with the number of ranges.
        /// </summary>
        private static IEnumerable<ByteRange> DataUnion(OpenFile source, long offset, OpenFile dest, long destinationOffset, long requested)
        {
            using IEnumerator<ByteRange> a = Shift(DataCopy.DataRanges(source.Handle, offset, offset + requested, source.Path), -offset).GetEnumerator();
            using IEnumerator<ByteRange> b = Shift(DataCopy.DataRanges(dest.Handle, destinationOffset, destinationOffset + requested, dest.Path), -destinationOffset).GetEnumerator();
            bool hasA = a.MoveNext(), hasB = b.MoveNext();
            ByteRange? current = null;
            while (hasA || hasB)
            {
                ByteRange next;
                if (hasA && (!hasB || a.Current.Start <= b.Current.Start))
                {
                    next = a.Current;
                    hasA = a.MoveNext();
                }
                else
                {
                    next = b.Current;
                    hasB = b.MoveNext();
                }

                if (current is { } c && next.Start <= c.End)
                {
                    current = new ByteRange(c.Start, Math.Max(c.End, next.End));
                    continue;
                }

                if (current is { } done)
                {
                    yield return done;
                }

                current = next;
            }

            if (current is { } last)
            {
                yield return last;
            }
        }

        private static IEnumerable<ByteRange> Shift(IEnumerable<ByteRange> ranges, long by)
        {
            foreach (ByteRange r in ranges)
            {
                yield return new ByteRange(r.Start + by, r.End + by);
            }
        }

        /// <summary>The ranges cut into pieces of at most <see cref="ChunkSize"/> (btrfs dedupes at most that per call).</summary>
        private static IEnumerable<ByteRange> Chunks(IEnumerable<ByteRange> ranges)
        {
            foreach (ByteRange r in ranges)
            {
                for (long at = r.Start; at < r.End;)
                {
                    long end = Math.Min(r.End, ByteRange.EndOf(at, ChunkSize)); // no overflow at a file's last byte (a review)
                    yield return new ByteRange(at, end);
                    at = end;
                }
            }
        }

        /// <summary>
        /// The kernel shares whole filesystem blocks only: offsets must be multiples of the block size,
        /// and so must a length that does not end at the source's end. Said up front, not as EINVAL.
        /// Returns the block size.
        /// </summary>
        private static long ThrowUnlessAligned(OpenFile source, OpenFile dest, long offset, long? length, long destinationOffset, bool fromGroup)
        {
            long block = Clone.BlockSize(source.Handle);
            string? wrong = offset % block != 0 ? (fromGroup ? $"the group's first range starts at {offset}, which" : $"-Offset {offset}")
                : destinationOffset % block != 0 ? (fromGroup ? $"its range in it starts at {destinationOffset}, which" : $"-DestinationOffset {destinationOffset}")
                : !fromGroup && length is long l && l % block != 0 && offset + l < source.Size ? $"-Length {l} (a length that does not reach the source's end)"
                : null;
            if (wrong is not null)
            {
                throw new FileOperationException(
                    FileErrorKind.InvalidArgument,
                    Errno.EINVAL,
                    "FIDEDUPERANGE",
                    dest.Path,
                    $"Cannot deduplicate '{dest.Path}' against '{source.Path}': {wrong} is not a multiple of the filesystem's block size, {block} bytes; the kernel only shares whole blocks. "
                    + (fromGroup ? "The group was not made by Find-BtrfsDuplicate on this filesystem (or the files changed since): run it again." : $"Round it to a multiple of {block}.")
                    + " Nothing was changed.");
            }

            return block;
        }

        /// <summary>The range holds no byte of one of the files (empty, or ending before the range starts).</summary>
        private static FileOperationException NothingInRange(OpenFile source, OpenFile dest, long offset, long destinationOffset, bool fromGroup) => new(
            FileErrorKind.InvalidArgument,
            Errno.EINVAL,
            "FIDEDUPERANGE",
            dest.Path,
            $"Nothing to deduplicate between '{source.Path}' at {offset} ({source.Size} bytes long) and '{dest.Path}' at {destinationOffset} ({dest.Size} bytes long): "
            + (fromGroup ? "a file is shorter than where the range starts now (it shrank since the search): run Find-BtrfsDuplicate again." : "a file is empty or ends before the range starts.")
            + " Nothing was changed.");

        /// <summary>A range of a group (<paramref name="offset"/>, <paramref name="length"/> bytes) that reaches past the file's end now: it shrank since the search.</summary>
        internal static void ThrowIfShrunk(OpenFile file, long offset, long length)
        {
            long size = FileStatus.Of(file.Handle)?.Size ?? file.Size;
            if (offset > size || length > size - offset) // never added: a hand-made group's offset near the largest one wraps around
            {
                throw new FileOperationException(
                    FileErrorKind.ChangedSinceListed,
                    0,
                    "statx",
                    file.Path,
                    $"Cannot deduplicate the range at {offset} ({length} bytes) of '{file.Path}': the file is {size} bytes long now, shorter than the range's end; it shrank since the search. Nothing was changed for this range; run Find-BtrfsDuplicate again.");
            }
        }

        /// <summary>The range is less than one block and does not end both files: the kernel would share nothing and say it shared it all.</summary>
        private static FileOperationException PartialBlockOnly(OpenFile source, OpenFile dest, long offset, long partial, long block, bool fromGroup) => new(
            FileErrorKind.InvalidArgument,
            Errno.EINVAL,
            "FIDEDUPERANGE",
            dest.Path,
            $"Cannot deduplicate '{dest.Path}' against '{source.Path}': the range at {offset} is {partial} bytes, less than one block ({block} bytes), and does not end both files; "
            + "the kernel shares a partial block only where it is the last of both files. "
            + (fromGroup ? "A file changed size since the search: run Find-BtrfsDuplicate again." : "Give ranges of whole blocks, or ones that end both files.")
            + " Nothing was changed.");

        /// <summary>
        /// Whether the kernel shared the partial last block ending at <paramref name="sourceEnd"/> and
        /// <paramref name="destEnd"/>: it does where that block ends both files, and where a file grew
        /// meanwhile it takes the whole blocks alone. Both still ending there says it was shared (compressed or
        /// inline data, which FIEMAP cannot place, included); otherwise only FIEMAP showing both on the same
        /// bytes does.
        /// </summary>
        private static bool TailShared(OpenFile source, long sourceEnd, OpenFile dest, long destEnd, long tail) =>
            (FileStatus.Of(source.Handle)?.Size == sourceEnd && FileStatus.Of(dest.Handle)?.Size == destEnd)
            || SameExtents(source, sourceEnd - tail, dest, destEnd - tail, tail);

        /// <summary>
        /// True when [a, a+n) of <paramref name="x"/> and [b, b+n) of <paramref name="y"/> map to the
        /// same physical bytes (holes at the same places count as the same): FIEMAP of both ranges,
        /// normalized to offsets within the range and merged where physically contiguous.
        /// </summary>
        internal static bool SameExtents(OpenFile x, long a, OpenFile y, long b, long n)
        {
            // A range with data not yet on disk (delalloc), preallocated (unwritten), inline or of unknown
            // place is never the same as anything: the kernel is asked (and compares the bytes).
            if (Normalized(x, a, n) is not List<RawExtent> sx || Normalized(y, b, n) is not List<RawExtent> sy || sx.Count == 0 || sx.Count != sy.Count)
            {
                return false;
            }

            for (int i = 0; i < sx.Count; i++)
            {
                if (sx[i] != sy[i])
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>The range's extents relative to <paramref name="start"/>, physically contiguous ones merged; null when any is not plain data on disk.</summary>
        private static List<RawExtent>? Normalized(OpenFile f, long start, long n)
        {
            var list = new List<RawExtent>();
            // Encoded (compressed): FIEMAP gives the extent's start for every reference, whichever part of it a
            // file uses, so two ranges using different parts would look the same.
            const ExtentFlags unknown = ExtentFlags.Unknown | ExtentFlags.Delalloc | ExtentFlags.DataInline | ExtentFlags.Unwritten | ExtentFlags.Encoded;
            foreach (RawExtent e in Fiemap.Read(f, (ulong)start, (ulong)n, sync: false))
            {
                if ((e.Flags & unknown) != 0)
                {
                    return null;
                }

                // Offsets within the range; only the flags that say where the data is.
                ExtentFlags flags = e.Flags & ExtentFlags.Encoded;
                var r = new RawExtent(e.Logical - (ulong)start, e.Physical, e.Length, flags);
                if (list.Count > 0)
                {
                    RawExtent last = list[^1];
                    if (flags == 0 && last.Flags == 0 && last.End == r.Logical && last.Physical + last.Length == r.Physical)
                    {
                        list[^1] = new RawExtent(last.Logical, last.Physical, last.Length + r.Length, 0);
                        continue;
                    }
                }

                list.Add(r);
            }

            return list;
        }

        private static string Explain(int errno, OpenFile source, OpenFile dest, long sourceEnd, long destEnd)
        {
            string? shrunk = (FileStatus.Of(source.Handle)?.Size ?? long.MaxValue) < sourceEnd ? source.Path
                : (FileStatus.Of(dest.Handle)?.Size ?? long.MaxValue) < destEnd ? dest.Path
                : null;
            string why = errno switch
            {
                Errno.EINVAL when shrunk is not null => $"'{shrunk}' became shorter while this ran, and the range now reaches past its end",
                Errno.EINVAL when source.FileSystem.Kind == FileSystemKind.Btrfs => "btrfs refuses to share extents between a file with checksums and one without (a NOCOW file, or one written while the filesystem was mounted nodatasum; the ranges were aligned)",
                Errno.EINVAL => "the range is not aligned to the filesystem's block size, or the files cannot share extents",
                Errno.EOPNOTSUPP or Errno.ENOTTY => $"{dest.FileSystem.DisplayName} cannot share extents (dedupe works on btrfs and on xfs made with reflink=1)",
                Errno.EXDEV => "the two files are on different filesystems",
                Errno.EPERM or Errno.EACCES => "deduplicating needs write permission on the destination, its ownership, or root; an immutable file cannot be changed",
                Errno.ETXTBSY => "one of the files is an active swapfile",
                Errno.EAGAIN or Errno.EBUSY => "btrfs is sending the subvolume (btrfs send) or the file is in use as a swapfile; try again later",
                _ => string.Empty,
            };
            string text = $"{FileOperationException.Describe(errno)} ({Errno.Name(errno)})";
            return why.Length > 0 ? $"{text}: {why}." : text + ".";
        }
    }
}
