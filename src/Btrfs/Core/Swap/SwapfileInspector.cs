namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>
    /// Test-BtrfsSwapfile's Core: checks a file against what swapon (btrfs_swap_activate, or the
    /// generic iomap code on xfs and ext4) requires, from the inode flags, FIEMAP, the swap header, the
    /// mode and, on btrfs, the devices and profiles of the chunks the file lives in (exact as root,
    /// from the chunk tree; otherwise from FS_INFO and SPACE_INFO).
    /// </summary>
    public static class SwapfileInspector
    {
        /// <summary>Inspects a regular file (symbolic links are followed). Throws <see cref="FileOperationException"/>.</summary>
        public static SwapfileStatus Inspect(string path)
        {
            using OpenFile file = OpenFile.OpenRead(path);
            return Inspect(file);
        }

        internal static SwapfileStatus Inspect(OpenFile file)
        {
            FileSystemKind fs = file.FileSystem.Kind;
            bool btrfs = fs == FileSystemKind.Btrfs;
            bool fiemap = fs is FileSystemKind.Btrfs or FileSystemKind.Xfs or FileSystemKind.Ext4;
            InodeFlags flags = fiemap ? InodeAttributes.Get(file.Handle, file.Path) : InodeFlags.None;
            string? mountCompress = btrfs ? MountTable.Current().For(file)?.CompressOption : null;

            // The extents: holes, delayed or inline data, compression, sharing, and (btrfs) where they are.
            long covered = 0;
            bool unallocated = !fiemap, encoded = false, shared = false;
            var logicals = new List<ulong>();
            ulong? firstPhysical = null; // where the file's first byte is (btrfs: its logical address)
            if (fiemap)
            {
                // Dirty data is written back first (FIEMAP_FLAG_SYNC), as swapon itself does before it looks.
                foreach (RawExtent e in Fiemap.Read(file, 0, (ulong)Math.Max(1, file.Size), sync: true))
                {
                    if ((long)e.Logical > covered)
                    {
                        unallocated = true; // a hole
                    }

                    covered = Math.Max(covered, e.FileEnd);
                    unallocated |= (e.Flags & (ExtentFlags.Delalloc | ExtentFlags.Unknown | ExtentFlags.DataInline)) != 0;
                    encoded |= (e.Flags & ExtentFlags.Encoded) != 0;
                    shared |= (e.Flags & ExtentFlags.Shared) != 0;
                    if (e.Logical == 0 && (e.Flags & (ExtentFlags.Delalloc | ExtentFlags.Unknown | ExtentFlags.DataInline | ExtentFlags.Encoded)) == 0)
                    {
                        firstPhysical = e.Physical;
                    }

                    if (btrfs && (e.Flags & (ExtentFlags.Unknown | ExtentFlags.Delalloc | ExtentFlags.DataInline)) == 0)
                    {
                        logicals.Add(e.Physical);
                    }
                }

                unallocated |= covered < file.Size;
            }

            (bool oneDevice, bool singleProfile, string devicesNote) = btrfs ? Placement(file, logicals) : (true, true, string.Empty);

            int pageSize = Environment.SystemPageSize;
            // The kernel finds the header page by its device offset in pages: only a page-aligned start on one device has one.
            long? resumeOffset = firstPhysical is ulong at && oneDevice
                ? (btrfs ? DeviceOffset(file, at) : (long)at) is long device && device % pageSize == 0 ? device / pageSize : null
                : null;
            SwapHeader? header = ReadHeader(file, pageSize);
            bool signature = header is { Version: 1 };
            // As swapon reads the header (read_swap_header): a header of more pages than the file holds is refused, one
            // of fewer is taken, and only that many pages are used.
            long filePages = file.Size / pageSize;
            bool sizeMatches = header is not null && header.LastPage > 0 && (long)header.LastPage + 1 <= filePages;
            string? shorter = sizeMatches && (long)header!.LastPage + 1 < filePages
                ? $" (it uses only the {SizeFormatter.Format(((long)header.LastPage + 1) * pageSize)} its header says of the file's {SizeFormatter.Format(filePages * pageSize)}: mkswap again to use all)"
                : null;
            bool mode0600 = (file.Status.Permissions & 0xFFF) == 0x180;
            bool byRoot = file.Status.Uid == 0;
            bool noCow = btrfs && (flags & InodeFlags.NoCow) != 0;
            bool compressed = (btrfs && (flags & InodeFlags.Compress) != 0) || encoded; // ext4 takes chattr +c and compresses nothing
            // /proc/swaps names a swapfile by the path it was switched on through, which leads nowhere once that mount
            // is gone, or to another file: the table where its paths lead to their files, the kernel's answer (bounded:
            // it waits while the filesystem is frozen) only for a listed swapfile whose path cannot be where it is.
            bool active = SwapTable.Read().HoldsActive(file);

            var failures = new List<string>();
            if (fs is not (FileSystemKind.Btrfs or FileSystemKind.Xfs or FileSystemKind.Ext4))
            {
                failures.Add($"{file.FileSystem.DisplayName} cannot hold a swapfile here: put it on btrfs, xfs or ext4");
            }

            if (btrfs && !noCow)
            {
                failures.Add("not NOCOW (chattr +C only takes on an empty file: set after the data was written it is silently ignored): recreate it with New-BtrfsSwapfile");
            }

            if (compressed)
            {
                failures.Add("compressed (the +c attribute or compressed extents): recreate it NOCOW with New-BtrfsSwapfile");
            }

            if (fiemap && unallocated)
            {
                failures.Add("not fully allocated (holes or inline data): swapon needs every block allocated; fallocate the whole size, or recreate it with New-BtrfsSwapfile");
            }

            if (shared)
            {
                failures.Add("shares extents with a reflink copy or snapshot, which swapon refuses: delete the copy, keep swapfiles in a subvolume that is never snapshotted, or recreate it");
            }

            if (!signature)
            {
                failures.Add(header is not null ? $"swap header version {header.Version}, not 1: run mkswap again"
                    : SignatureForAnotherPageSize(file, pageSize) is int other
                        ? $"a swap signature made for a page size of {other} bytes, where this system's is {pageSize} (swapon refuses it: \"swap format pagesize does not match\"): run mkswap again here (or recreate it with New-BtrfsSwapfile)"
                        : "no swap signature: run mkswap on it (or recreate it with New-BtrfsSwapfile)");
            }
            else if (!sizeMatches && header!.LastPage == 0)
            {
                // Said as the kernel says it (before: "the header says 4096 bytes but the file has 4194304", which a longer
                // file cannot be refused for; a hostile test).
                failures.Add("the header says the swap area is empty (its last page is 0), which swapon refuses (\"Empty swap-file\"): run mkswap again");
            }
            else if (!sizeMatches)
            {
                // The page count in 64 bits: a last page of 0xFFFFFFFF said "0 bytes" (a hostile test).
                failures.Add($"the header says {((long)header!.LastPage + 1) * pageSize} bytes but the file has {file.Size / pageSize * pageSize} in whole pages, and swapon refuses a swap area shorter than its header: run mkswap again");
            }

            // swapon opens the file for writing (O_RDWR): what refuses that refuses the swapfile. Found by a hostile review
            // (before: "valid" for each, and swapon said EPERM or EROFS).
            if ((flags & InodeFlags.Immutable) != 0)
            {
                failures.Add("immutable (chattr +i): swapon opens it for writing, which the kernel refuses (EPERM): chattr -i");
            }

            if ((flags & InodeFlags.AppendOnly) != 0)
            {
                failures.Add("append-only (chattr +a): swapon opens it for writing, which the kernel refuses (EPERM): chattr -a");
            }

            if (file.IsReadOnlyMount)
            {
                failures.Add("on a read-only mount: swapon opens it for writing, which the kernel refuses (EROFS): remount it read-write");
            }
            else if (btrfs && BtrfsSubvolume.Of(file) is { IsReadOnly: true } sv)
            {
                failures.Add($"in the read-only btrfs snapshot or subvolume '{sv.Name}': swapon opens it for writing, which the kernel refuses (EROFS); keep swapfiles in a writable subvolume");
            }

            if (signature && header!.BadPages > 0)
            {
                failures.Add($"its header lists {header.BadPages} bad page(s), and swapon refuses a swapfile that lists any (EINVAL; bad pages are for swap partitions, mkswap -c): run mkswap again");
            }

            if (btrfs && !active && BtrfsSearch.ExclusiveOperation(file.Handle) is string operation) // an active swapfile stays valid: it is on
            {
                failures.Add($"its filesystem is in a btrfs exclusive operation ({operation}; a paused balance counts until it is resumed or cancelled), and swapon refuses while it lasts (EBUSY): wait for it to end, or btrfs balance cancel");
            }

            if (!mode0600)
            {
                failures.Add($"mode {Convert.ToString(file.Status.Permissions & 0xFFF, 8).PadLeft(4, '0')}: swapped-out memory would be readable by others; chmod 0600");
            }

            if (!byRoot)
            {
                failures.Add($"owned by uid {file.Status.Uid}: that user could read and change the memory swapped out to it (swapon warns \"insecure file owner\"); chown root:root");
            }

            if (!oneDevice)
            {
                failures.Add(devicesNote);
            }

            if (!singleProfile)
            {
                failures.Add("its data is not in the single profile (RAID or DUP), which the kernel refuses for swapfiles: use a filesystem (or subvolume on one) whose data profile is single");
            }

            // A layout that can still move (copy on write, holes, shared or compressed data) has no offset to resume from: the
            // first page is elsewhere after the next write (before: given all the same, which btrfs inspect-internal
            // map-swapfile refuses; a hostile review).
            bool settled = (!btrfs || noCow) && fiemap && !unallocated && !shared && !compressed;
            resumeOffset = settled ? resumeOffset : null;

            // A start that is not page-aligned (blocks smaller than a page: ext4 -b 1024) has none either: the kernel's
            // resume reads the header from a whole page of the device (before: no offset and not a word why).
            string? unaligned = settled && resumeOffset is null && firstPhysical is ulong first && oneDevice && !btrfs && (long)first % pageSize != 0
                ? $"; no resume offset for hibernation: its first block is at byte {first} of the device, not on a page boundary (blocks smaller than a page), and resuming reads the header from a whole page; make it on a filesystem with {pageSize}-byte blocks"
                : null;
            string[] reason = failures.Count == 0
                ? new[] { (active ? "valid, and active (swap is on in it)" : "valid: swapon accepts it") + shorter + unaligned }
                : failures.ToArray();
            return new SwapfileStatus
            {
                Path = file.Path,
                Size = file.Size,
                FileSystem = fs,
                IsValid = failures.Count == 0,
                IsActive = active,
                IsNoCow = noCow,
                IsCompressed = compressed,
                MountCompressOption = mountCompress,
                FullyAllocated = fiemap && !unallocated,
                IsShared = shared,
                HasSwapSignature = signature,
                Permissions0600 = mode0600,
                OwnedByRoot = byRoot,
                SingleDevice = oneDevice,
                SingleDataProfile = singleProfile,
                SizeMatchesHeader = sizeMatches,
                Uuid = header?.Uuid.ToString() ?? string.Empty,
                Label = header?.Label ?? string.Empty,
                Reason = reason,
                ResumeOffset = resumeOffset,
            };
        }

        /// <summary>btrfs: the device offset of a logical address in a single-profile chunk (chunk tree: root only); null when it cannot be known.</summary>
        private static long? DeviceOffset(OpenFile file, ulong logical)
        {
            try
            {
                List<BtrfsChunk> chunks = BtrfsChunk.ReadAll(file);
                int at = chunks.FindIndex(x => x.Contains(logical)); // (Find gives a default chunk, not null, when none holds it)
                return at >= 0 && chunks[at] is BtrfsChunk chunk && chunk.Profile == 0 && chunk.DeviceOffsets.Length == 1
                    ? (long)(chunk.DeviceOffsets[0] + (logical - chunk.Logical))
                    : null;
            }
            catch (FileOperationException ex) when (ex.Kind == FileErrorKind.AccessDenied)
            {
                return null;
            }
        }

        /// <summary>
        /// btrfs: are the file's extents all on one device and in single-profile chunks? Exact from the
        /// chunk tree (root); otherwise judged from the device count and the data profiles in use.
        /// </summary>
        internal static (bool OneDevice, bool SingleProfile, string Note) Placement(OpenFile file, List<ulong> logicals)
        {
            ulong devices = BtrfsSearch.FileSystemInfo(file)?.NumDevices ?? 1;
            try
            {
                List<BtrfsChunk> chunks = BtrfsChunk.ReadAll(file);
                var seen = new HashSet<ulong>();
                bool single = true;
                foreach (ulong logical in logicals)
                {
                    int at = chunks.FindIndex(x => x.Contains(logical)); // (Find gives a default chunk, not null, when none holds it)
                    if (at < 0)
                    {
                        continue;
                    }

                    BtrfsChunk chunk = chunks[at];

                    single &= chunk.Profile == 0;
                    foreach (ulong d in chunk.DeviceIds)
                    {
                        seen.Add(d);
                    }
                }

                bool one = seen.Count <= 1;
                return (one, single, $"its extents lie on {seen.Count} devices of this {devices}-device filesystem, and the kernel needs all of a swapfile's extents on one device: recreate it on a single-device filesystem");
            }
            catch (FileOperationException ex) when (ex.Kind == FileErrorKind.AccessDenied)
            {
                // Not root: the chunk tree is out of reach. Judge from what any user can read.
                bool dataSingle = BtrfsSearch.DataIsSingleProfile(file);
                return (devices <= 1, dataSingle, $"the filesystem has {devices} devices: the kernel accepts a swapfile only if all its extents lie on one device, which cannot be checked without root; use a single-device filesystem");
            }
        }

        /// <summary>
        /// The page size another system's mkswap wrote the signature for (mkswap -p, or a header made on an arm64 with 16 or
        /// 64 KiB pages), where none is at the end of this system's first page; null when none is found (a hostile test: it
        /// was "no swap signature").
        /// </summary>
        private static int? SignatureForAnotherPageSize(OpenFile file, int pageSize)
        {
            byte[] tail = new byte[10];
            foreach (int other in new[] { 4096, 8192, 16384, 65536 })
            {
                if (other != pageSize && file.Size >= other
                    && Files.ReadFullyAt(file.Handle, tail, other - 10, file.Path, "Cannot read the header of") == 10
                    && tail.AsSpan().SequenceEqual(System.Text.Encoding.ASCII.GetBytes(SwapHeader.Signature)))
                {
                    return other;
                }
            }

            return null;
        }

        /// <summary>The swap header in the file's first page (none in a file smaller than a page), read without moving its access time where this user may (the owner, CAP_FOWNER: O_NOATIME; a hostile review: Test-BtrfsSwapfile moved it).</summary>
        internal static SwapHeader? ReadHeader(OpenFile file, int pageSize)
        {
            if (file.Size < pageSize)
            {
                return null;
            }

            _ = Files.TryKeepAccessTime(file.Handle);

            byte[] page = new byte[pageSize];
            return Files.ReadFullyAt(file.Handle, page, 0, file.Path, "Cannot read the header of") == pageSize ? SwapHeader.Parse(page) : null;
        }

    }
}
