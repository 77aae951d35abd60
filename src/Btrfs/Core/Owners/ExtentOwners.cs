namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using System.Threading;
    using Btrfs.Kernel;

    /// <summary>Every reference to one extent, and what could not be listed or named.</summary>
    public sealed class ExtentOwnerList
    {
        internal ExtentOwnerList(ulong diskAddress, List<BtrfsExtentOwner> owners, long unlisted, List<string> warnings)
        {
            DiskAddress = (long)diskAddress;
            Owners = owners;
            UnlistedReferences = unlisted;
            Warnings = warnings;
        }

        /// <summary>The extent's btrfs logical address.</summary>
        public long DiskAddress { get; }

        /// <summary>One record per reference (and per hard link of its inode).</summary>
        public IReadOnlyList<BtrfsExtentOwner> Owners { get; }

        /// <summary>References the kernel did not return because they did not fit in the largest buffer (16 MiB).</summary>
        public long UnlistedReferences { get; }

        /// <summary>What the caller should tell the user: subvolumes not reachable under any mount, inodes without a name, lists cut short.</summary>
        public IReadOnlyList<string> Warnings { get; }
    }

    /// <summary>
    /// Who references a btrfs data extent: LOGICAL_INO_V2 with IGNORE_OFFSET lists every (inode,
    /// offset, subvolume) that references the extent at a logical address; INO_PATHS names each
    /// inode inside its subvolume, whose root is found through <see cref="SubvolumeMap"/>. As
    /// `btrfs inspect-internal logical-resolve`, but as records, in one process. Root only.
    /// </summary>
    public sealed class ExtentOwners : IDisposable
    {
        private const int FirstBufferSize = 64 * 1024;
        private readonly OpenFile anchor;
        private readonly SubvolumeMap subvolumes;
        private readonly HashSet<ulong> warnedSubvolumes = new();
        private readonly HashSet<(ulong Root, ulong Inode)> warnedNames = new();
        private byte[] buffer = new byte[FirstBufferSize];
        private bool committed;

        /// <summary>Resolves owners on the filesystem of <paramref name="anchor"/> (any open file or directory on it; not disposed here).</summary>
        internal ExtentOwners(OpenFile anchor)
        {
            ArgumentNullException.ThrowIfNull(anchor);
            BtrfsOnly.Require(anchor, "list the owners of extents on the filesystem of");
            this.anchor = anchor;
            subvolumes = new SubvolumeMap(anchor, MountTable.Read());
        }

        /// <summary>
        /// The start (its btrfs logical address) and size on disk of the data extent that contains btrfs logical address
        /// <paramref name="diskAddress"/>, from its extent item (whose key's offset is its size), or (0, 0) where none is
        /// found (run <see cref="Find"/> first: it commits the transaction once when the extent is not in the tree yet).
        /// Root only, as <see cref="Find"/>.
        /// </summary>
        public (ulong Start, long Size) ExtentAt(ulong diskAddress)
        {
            const ulong ExtentTree = 2;
            const uint ExtentItem = 168;
            const ulong Largest = 256UL << 20; // an extent starts at most this far before: 128 MiB written (BTRFS_MAX_EXTENT_SIZE), 256 MiB preallocated (__btrfs_prealloc_file_range)
            (ulong, long) found = (0, 0);
            foreach (BtrfsItem item in BtrfsSearch.Search(anchor, ExtentTree, diskAddress - Math.Min(diskAddress, Largest), diskAddress, ExtentItem, ExtentItem))
            {
                if (item.Type == ExtentItem && item.ObjectId <= diskAddress && diskAddress < item.ObjectId + item.Offset)
                {
                    found = (item.ObjectId, (long)item.Offset);
                }
            }

            return found;
        }

        /// <summary>
        /// The owners of the extent that contains btrfs logical address <paramref name="diskAddress"/>.
        /// Throws <see cref="FileOperationException"/>: ExtentNotFound when no data extent is there,
        /// AccessDenied without CAP_SYS_ADMIN.
        /// </summary>
        public ExtentOwnerList Find(ulong diskAddress, CancellationToken cancel = default)
        {
            var warnings = new List<string>();
            var refs = new List<ExtentReference>();
            long unlisted = References(diskAddress, refs);
            var owners = new List<BtrfsExtentOwner>();

            // An inode that references the extent at many offsets (a block cloned into it 400,000 times) is named once
            // (INO_PATHS per reference took 8.8 s there); and Ctrl+C is heard between references (before: only when the
            // whole extent was done; a hostile review).
            var named = new Dictionary<(ulong Root, ulong Inode), (List<string> Paths, int NotUtf8)>();
            int turn = 0;
            foreach ((ulong inode, ulong offset, ulong root) in refs)
            {
                if ((++turn & 255) == 0)
                {
                    cancel.ThrowIfCancellationRequested();
                }

                string? subvolumePath = subvolumes.PathOf(root);
                OpenFile? dir = subvolumes.DirectoryOf(root);
                if (dir is null && subvolumes.InnerMountsOf(root) is { Count: > 0 } inner)
                {
                    // Only directories inside the subvolume are mounted (bind mounts of them): each name below one is
                    // given through the deepest that holds it; a reference with none there has no path (before: none had).
                    List<string> all = PathsOf(inner[0].Dir, root, inode, out bool innerCut, out int innerNotUtf8, warnings);
                    bool any = innerNotUtf8 > 0;
                    for (int k = 0; k < innerNotUtf8; k++)
                    {
                        owners.Add(new BtrfsExtentOwner((long)diskAddress, (long)root, subvolumePath, (long)inode, (long)offset, null, NameNotUtf8));
                    }

                    foreach (string name in all)
                    {
                        foreach ((OpenFile innerDir, string prefix) in inner)
                        {
                            if (name.StartsWith(prefix, StringComparison.Ordinal))
                            {
                                any = true;
                                owners.Add(new BtrfsExtentOwner((long)diskAddress, (long)root, subvolumePath, (long)inode, (long)offset, innerDir.Path.TrimEnd('/') + "/" + name[prefix.Length..]));
                                break;
                            }
                        }
                    }

                    if (innerCut)
                    {
                        warnings.Add($"Inode {inode} of subvolume {root} has more hard links than the kernel names in one call (4 KiB of paths); only the first {all.Count} are looked at.");
                    }

                    if (!any)
                    {
                        if (warnedSubvolumes.Add(root))
                        {
                            string through = string.Join(", ", inner.Select(i => $"'{i.Dir.Path}' (its directory '{i.Prefix.TrimEnd('/')}')"));
                            warnings.Add($"Subvolume {root} ('{subvolumePath}') is reachable only through {through}; owners outside those directories are listed without a path. Mount the subvolume (or the top level, subvolid=5) to see them.");
                        }

                        owners.Add(new BtrfsExtentOwner((long)diskAddress, (long)root, subvolumePath, (long)inode, (long)offset, null, "outside the directories of its subvolume that are mounted"));
                    }

                    continue;
                }

                if (dir is null)
                {
                    // One decision, said twice: in each owner's WhyNoPath and in the warning (once per subvolume).
                    bool nameNotUtf8 = subvolumePath is not null && subvolumes.NameNotUtf8(root);
                    string why = subvolumePath is null ? "its subvolume is being deleted"
                        : nameNotUtf8 ? "its subvolume's name is not valid UTF-8"
                        : "not reachable under a mount";
                    if (warnedSubvolumes.Add(root))
                    {
                        warnings.Add(subvolumePath is null
                            ? $"Subvolume {root} references extents but has no path (it is being deleted); its owners are listed without a path."
                            : nameNotUtf8
                                ? $"Subvolume {root}'s name ('{subvolumePath}'), or a directory's on the way to it, is not valid UTF-8 (shown with U+FFFD for each byte that is not): no PowerShell path can name it, so its owners are listed without a path. Rename it to UTF-8 (mv with the shell's $'\\xNN' quoting) to see them."
                                : $"Subvolume {root} ('{subvolumePath}') is not reachable under any mount of this filesystem; its owners are listed without a path. Mount it (or the top level, subvolid=5) to see them.");
                    }

                    owners.Add(new BtrfsExtentOwner((long)diskAddress, (long)root, subvolumePath, (long)inode, (long)offset, null, why));
                    continue;
                }

                // Named once per inode, as full paths every reference shares (a hostile review: 40 hard links past the
                // kernel's 4 KiB of names and 262,144 references built a path string per name per reference, 3.6 GB).
                if (!named.TryGetValue((root, inode), out (List<string> Paths, int NotUtf8) known))
                {
                    List<string> names = PathsOf(dir, root, inode, out bool cut, out int notUtf8, warnings);
                    if (cut)
                    {
                        warnings.Add($"Inode {inode} of subvolume {root} has more hard links than the kernel names in one call (4 KiB of paths); only the first {names.Count + notUtf8} are listed.");
                    }

                    if (names.Count == 0 && notUtf8 == 0)
                    {
                        warnings.Add($"Inode {inode} of subvolume {root} ('{subvolumePath}') references the extent but has no name (deleted while still open, or an unnamed temporary file).");
                    }

                    string prefix = dir.Path.TrimEnd('/') + "/";
                    known = (names.ConvertAll(name => prefix + name), notUtf8);
                    named[(root, inode)] = known;
                }

                // A name that is not UTF-8: this owner without a path (never a decoded one, which names another file).
                bool nameless = known.Paths.Count == 0 && known.NotUtf8 == 0;
                int pathless = nameless ? 1 : known.NotUtf8; // one for an inode with no name at all
                for (int k = 0; k < pathless; k++)
                {
                    owners.Add(new BtrfsExtentOwner((long)diskAddress, (long)root, subvolumePath, (long)inode, (long)offset, null, nameless ? "it has no name (deleted while still open, or an unnamed temporary file)" : NameNotUtf8));
                }

                foreach (string path in known.Paths)
                {
                    owners.Add(new BtrfsExtentOwner((long)diskAddress, (long)root, subvolumePath, (long)inode, (long)offset, path));
                }
            }

            if (unlisted > 0)
            {
                warnings.Add($"The extent at {diskAddress} has {unlisted} more reference(s) than fit in the kernel's largest answer (16 MiB); they are not listed.");
            }

            return new ExtentOwnerList(diskAddress, owners, unlisted, warnings);
        }

        /// <summary>
        /// The owners of each distinct data extent that the items of <paramref name="file"/> overlapping
        /// [offset, offset + length) reference, once each, with the file offset reached (for progress).
        /// Throws ExtentNotFound when the range holds no data extent (holes, inline data, past the end).
        /// </summary>
        internal IEnumerable<(ExtentOwnerList Owners, long Reached)> FindInRange(OpenFile file, long offset, long length)
        {
            foreach ((ExtentOwnerList owners, long reached, _) in FindInRangeWithSizes(file, offset, length))
            {
                yield return (owners, reached);
            }
        }

        /// <summary>
        /// As <see cref="FindInRange"/>, with each extent's size on disk (disk_num_bytes). Data written but not yet
        /// on disk (delayed allocation) has no extent yet: where FIEMAP shows such data in the file, or the range holds data
        /// and no item, the filesystem is committed once (syncfs) and the file searched again. (Before: ExtentNotFound, "a
        /// hole, inline data", for a file just written, and a part not yet written back left out. Hostile tests.)
        /// An extent already in <paramref name="answered"/> (asked about for an earlier piece of the same file) is not
        /// looked up again, nor yielded; each one yielded is added to it.
        /// </summary>
        internal IEnumerable<(ExtentOwnerList Owners, long Reached, long ExtentBytes)> FindInRangeWithSizes(OpenFile file, long offset, long length, CancellationToken cancel = default, ISet<ulong>? answered = null)
        {
            ArgumentNullException.ThrowIfNull(file);
            var seen = new HashSet<ulong>();
            bool synced = false, unwritten = false;

            // Data not yet written back beside data that is (a file written further since its last sync): FIEMAP says
            // delalloc; the filesystem is committed once first, so that no part is left out (a hostile test: the new part
            // was missing, without a word).
            if (!committed && delallocAsked.Add((file.Status.DevMajor, file.Status.DevMinor, file.Status.Inode)) && Delalloc(file))
            {
                synced = true;
                committed = true;
                _ = Files.TrySyncFileSystem(file.Handle);
            }

            while (true)
            {
                foreach (BtrfsFileExtentRecord item in BtrfsFileExtents.DataOverlapping(file, offset, length))
                {
                    // (An extent answered for already is not asked about again: its references and their paths, looked up
                    // for each of the pieces piped in, made an extent shared 4,000 times within one file take 18 s, and one
                    // shared 30,000 times more than 10 minutes; a hostile test.)
                    if (seen.Add(item.DiskBytenr) && (answered is null || answered.Add(item.DiskBytenr)))
                    {
                        // Where the lookup fails, nothing of it counts as answered: a later piece of the file asks again
                        // (before: an extent whose lookup failed, or one found with it, was passed over by later pieces; a review).
                        var marked = new List<ulong> { item.DiskBytenr };
                        List<(ExtentOwnerList Owners, BtrfsFileExtentRecord Item)> found;
                        try
                        {
                            found = FindNamedBy(file, item, new ByteRange(offset, length > long.MaxValue - offset ? long.MaxValue : offset + length), seen, answered, marked, cancel);
                        }
                        catch when (answered is not null)
                        {
                            marked.ForEach(a => answered.Remove(a));
                            throw;
                        }

                        foreach ((ExtentOwnerList owners, BtrfsFileExtentRecord now) in found)
                        {
                            yield return (owners, now.FileEnd, (long)now.DiskNumBytes);
                        }
                    }
                }

                if (seen.Count > 0 || synced || !(unwritten = HasData(file, offset, length)))
                {
                    break;
                }

                // The filesystem, not the file: a file's fsync (the fast kind, for a file synced before) can return
                // before its new extents' items are in the tree; syncfs commits, after every ordered extent is done (a review).
                synced = true;
                committed = true;
                if (Files.TrySyncFileSystem(file.Handle) != 0)
                {
                    break;
                }
            }

            if (seen.Count == 0)
            {
                throw new FileOperationException(
                    FileErrorKind.ExtentNotFound,
                    0,
                    "BTRFS_IOC_TREE_SEARCH_V2",
                    file.Path,
                    (offset == 0 && length >= file.Size
                        ? (file.Size == 0 ? $"'{file.Path}' is empty: it has no data extent" : $"'{file.Path}' has no data extent") // the whole file asked (before: "at offset 0", a hostile review)
                        : $"No data extent is at offset {offset} of '{file.Path}'" + (length > 1 ? $" or in the {length} bytes from there" : string.Empty))
                    + (file.Size == 0 ? ". Only data extents can be shared." : unwritten
                        ? ": the data there is not on disk yet (written, but not written back: it has no extent until then). Run sync and ask again."
                        : offset == 0 && length >= file.Size
                            ? ": its data is inline (a small file's data lives in the metadata), or all holes. Only data extents can be shared; Get-BtrfsExtent -Exact lists the file's items."
                            : ": it is a hole, inline data, or beyond the end of the file. Only data extents can be shared; Get-BtrfsExtent -Exact lists the file's items."));
            }
        }

        /// <summary>
        /// <see cref="Find"/> for an extent <paramref name="file"/>'s item names, with that item. Where the extent tree has no
        /// such extent: an item that still names it is a new extent not committed yet (a file being written: the one commit a
        /// command makes is spent), committed once more and asked again; the file rewritten there since its items were read
        /// (the extent freed), the extents it has there now are looked up instead (those not <paramref name="seen"/> yet), a
        /// few times at most, then it is said to have changed (FileChangedDuringCopy). (Before: ExtentNotFound about a
        /// -DiskAddress nobody gave, in 8 to 10 of 60 runs on a file being written; a hostile test.)
        /// </summary>
        private List<(ExtentOwnerList Owners, BtrfsFileExtentRecord Item)> FindNamedBy(OpenFile file, BtrfsFileExtentRecord item, ByteRange asked, HashSet<ulong> seen, ISet<ulong>? answered, List<ulong> marked, CancellationToken cancel, int depth = 0)
        {
            bool synced = false;
            for (int attempt = 0; ; attempt++)
            {
                FileOperationException notFound;
                try
                {
                    return new List<(ExtentOwnerList, BtrfsFileExtentRecord)> { (Find(item.DiskBytenr, cancel), item) };
                }
                catch (FileOperationException ex) when (ex.Kind == FileErrorKind.ExtentNotFound)
                {
                    notFound = ex;
                }

                bool stillNamed = BtrfsFileExtents.DataOverlapping(file, (long)item.FileOffset, 1).Any(now => now.DiskBytenr == item.DiskBytenr);
                if (stillNamed && attempt == 0 && (synced = Files.TrySyncFileSystem(file.Handle) == 0))
                {
                    continue;
                }

                if (!stillNamed && depth < 3)
                {
                    // What the file has there now, within what was asked for (an -Offset and -Length range).
                    long from = Math.Max((long)item.FileOffset, asked.Start), to = Math.Min(item.FileEnd, asked.End);
                    var found = new List<(ExtentOwnerList, BtrfsFileExtentRecord)>();
                    foreach (BtrfsFileExtentRecord now in to > from ? BtrfsFileExtents.DataOverlapping(file, from, to - from).ToList() : new List<BtrfsFileExtentRecord>())
                    {
                        if (seen.Add(now.DiskBytenr) && (answered is null || answered.Add(now.DiskBytenr)))
                        {
                            marked.Add(now.DiskBytenr);
                            found.AddRange(FindNamedBy(file, now, asked, seen, answered, marked, cancel, depth + 1));
                        }
                    }

                    return found;
                }

                throw new FileOperationException(
                    FileErrorKind.ChangedDuringCopy,
                    notFound.Errno,
                    "BTRFS_IOC_LOGICAL_INO_V2",
                    file.Path,
                    $"Cannot list the owners of the extents of '{file.Path}': it was written to while they were looked up (the extent at offset {item.FileOffset} {(!stillNamed ? "was replaced again and again" : synced ? "was not in the extent tree even after a commit" : "was not in the extent tree yet, and the filesystem could not be committed")}). Run it again when nothing writes to it.",
                    notFound);
            }
        }

        /// <summary>The files asked once, whole, whether they hold data not yet written back (<see cref="Delalloc"/>): extents piped in one by one ask once per file.</summary>
        private readonly HashSet<(uint, uint, ulong)> delallocAsked = new();

        /// <summary>Whether FIEMAP shows data of the file not yet written back (delalloc).</summary>
        private static bool Delalloc(OpenFile file)
        {
            foreach (RawExtent e in Fiemap.Read(file, 0, ulong.MaxValue, sync: false))
            {
                if ((e.Flags & ExtentFlags.Delalloc) != 0)
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>
        /// Whether the file holds data (SEEK_DATA: written back or not) in [offset, offset + length) that no item of it
        /// covers: inline data, which SEEK_DATA counts as data too, is an item (a review: every small file was synced and
        /// said to be not on disk yet).
        /// </summary>
        private static bool HasData(OpenFile file, long offset, long length)
        {
            long size = file.Restat().Size;
            long end = length >= size - offset ? size : offset + length;
            return offset < end
                && DataCopy.DataRanges(file.Handle, offset, end, file.Path).Any()
                && !BtrfsFileExtents.Overlapping(file, offset, end - offset).Any(i => i.Item.IsInline);
        }

        /// <inheritdoc/>
        public void Dispose() => subvolumes.Dispose();

        /// <summary>The references to the extent at <paramref name="logical"/> (LOGICAL_INO_V2), committing the transaction once when it is not found yet; returns how many could not be listed.</summary>
        private long References(ulong logical, List<ExtentReference> into)
        {
            int errno;
            long missed;
            while ((errno = BtrfsInspect.TryReferences(anchor.Handle, logical, ref buffer, into, out missed)) == Errno.ENOENT && !committed)
            {
                // The extent tree gets a new extent's item when the transaction commits: data written
                // (even fsynced) since then is not found yet. Commit once and ask again.
                committed = true;
                if (Files.TrySyncFileSystem(anchor.Handle) != 0)
                {
                    break;
                }
            }

            if (errno is Errno.ENOENT or Errno.EINVAL)
            {
                // ENOENT: no extent item there; EINVAL: the address is a metadata block.
                throw new FileOperationException(
                    FileErrorKind.ExtentNotFound,
                    errno,
                    "BTRFS_IOC_LOGICAL_INO_V2",
                    anchor.Path,
                    $"No data extent is at btrfs logical address {logical} on the filesystem of '{anchor.Path}'. Take the address from Get-BtrfsExtent -Exact (DiskAddress) or from Get-BtrfsExtent (PhysicalOffset).");
            }

            return errno == 0 ? missed
                : throw BtrfsSearch.Failed(errno, "BTRFS_IOC_LOGICAL_INO_V2", anchor.Path, "Cannot list the owners of an extent on the filesystem of", "LOGICAL_INO");
        }

        /// <summary>Why an owner whose name is not valid UTF-8 has no path.</summary>
        private const string NameNotUtf8 = "its name is not valid UTF-8";

        /// <summary>
        /// INO_PATHS on the subvolume's root: the inode's names relative to it (none when the inode has gone). A name that
        /// is not valid UTF-8 is left out, and said in <see cref="NotUtf8Warning"/>: its owner is listed without a path.
        /// </summary>
        private List<string> PathsOf(OpenFile subvolumeRoot, ulong root, ulong inode, out bool cut, out int notUtf8Count, List<string> warnings)
        {
            var names = new List<string>();
            var notUtf8 = new List<string>();
            int errno = BtrfsInspect.TryPaths(subvolumeRoot.Handle, inode, names, out cut, notUtf8);
            if (errno is not (0 or Errno.ENOENT))
            {
                throw BtrfsSearch.Failed(errno, "BTRFS_IOC_INO_PATHS", subvolumeRoot.Path, "Cannot name an inode under", "INO_PATHS");
            }

            if (notUtf8.Count > 0 && warnedNames.Add((root, inode)))
            {
                warnings.Add(NotUtf8Warning(root, inode, subvolumeRoot.Path, notUtf8)); // once per inode, however many extents or references
            }

            notUtf8Count = notUtf8.Count;
            return names;
        }

        /// <summary>
        /// Names of an owner that are not valid UTF-8: no PowerShell path can hold them, and one decoded with U+FFFD for
        /// each bad byte is another file's name (a hostile test: two owners came out as one path, which piped on reached an
        /// unrelated file of that name). The owner is listed without a path for each.
        /// </summary>
        private static string NotUtf8Warning(ulong root, ulong inode, string under, List<string> names) =>
            $"Inode {inode} of subvolume {root} has {(names.Count == 1 ? "a name" : $"{names.Count} names")} under '{under}' that {(names.Count == 1 ? "is" : "are")} not valid UTF-8 ({string.Join(", ", names.Select(n => $"'{n}'"))}; a byte that is not UTF-8 is written \\xNN): no PowerShell path can name {(names.Count == 1 ? "it" : "them")}, so {(names.Count == 1 ? "it is" : "they are")} listed without a path. Rename {(names.Count == 1 ? "it" : "them")} to UTF-8 (convmv -f latin1 -t utf8, or mv with the shell's $'\\xNN' quoting) to see {(names.Count == 1 ? "it" : "them")}.";
    }
}
