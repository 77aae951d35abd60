namespace Btrfs.Kernel
{
    using System;
    using System.Buffers.Binary;
    using System.Collections.Generic;
    using System.Runtime.InteropServices;
    using System.Text;
    using Btrfs.Interop;

    /// <summary>One reference to a data extent: the inode, the file offset it references the extent at, and the subvolume (tree) it is in.</summary>
    internal readonly record struct ExtentReference(ulong Inode, ulong Offset, ulong Root);

    /// <summary>
    /// A subvolume's place: the subvolume and directory holding it, and its name there; where <see cref="NameIsUtf8"/> is
    /// false the name holds U+FFFD for each byte that is not UTF-8, for messages only: no path here can hold it, and as a
    /// name it would lead to another subvolume or to nothing.
    /// </summary>
    internal readonly record struct RootBackref(ulong Parent, ulong Directory, string Name, bool NameIsUtf8);

    /// <summary>
    /// btrfs's inspection calls, as `btrfs inspect-internal` makes them: LOGICAL_INO_V2 (who references
    /// the extent at a logical address; root only), INO_PATHS (an inode's names in its subvolume; root
    /// only), INO_LOOKUP (a directory's path in a subvolume; the caller's own subvolume's id without
    /// privilege) and the ROOT_BACKREF items of the root tree. Each returns the errno (0 for success);
    /// what a refusal means is the caller's.
    /// </summary>
    internal static class BtrfsInspect
    {
        /// <summary>The top level subvolume's id (BTRFS_FS_TREE_OBJECTID).</summary>
        internal const ulong TopLevelId = Libc.BTRFS_FS_TREE_OBJECTID;

        /// <summary>The inode number of every subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID).</summary>
        internal const ulong SubvolumeRootInode = Libc.BTRFS_FIRST_FREE_OBJECTID;

        /// <summary>The inode number of the empty directory a snapshot shows in place of a nested subvolume (BTRFS_EMPTY_SUBVOL_DIR_OBJECTID): no ioctl works on it.</summary>
        internal const ulong NestedSubvolumePlaceholderInode = Libc.BTRFS_EMPTY_SUBVOL_DIR_OBJECTID;

        /// <summary>The kernel never fills more than this for INO_PATHS (btrfs_ioctl_ino_to_path).</summary>
        private const int InoPathsBufferSize = 4096;

        /// <summary>
        /// The parts of the data extent at <paramref name="bytenr"/> that the references on the filesystem use (every
        /// file, subvolume and snapshot: LOGICAL_INO_V2, then each referencing EXTENT_DATA item read from its
        /// subvolume's tree), as [start, end) in the uncompressed extent, one reference at a time (the caller stops
        /// when it knows enough). A reference that cannot be read (a subvolume deleted and still being cleaned up, an
        /// item gone meanwhile) is passed over; nothing at all where the extent has no item yet. Root only.
        /// </summary>
        internal static IEnumerable<(ulong Start, ulong End)> UsedRanges(SafeFileDescriptor fd, string path, ulong bytenr)
        {
            var refs = new List<ExtentReference>();
            byte[] buffer = new byte[64 * 1024];
            if (TryReferences(fd, bytenr, ref buffer, refs, out _) != 0)
            {
                yield break;
            }

            const uint ExtentData = 108;
            var found = new List<(ulong, ulong)>(2);
            foreach ((ulong inode, ulong offset, ulong root) in refs)
            {
                found.Clear();
                try
                {
                    foreach (BtrfsFileExtentRecord item in BtrfsSearch.Search(fd, path, root, inode, inode, ExtentData, ExtentData, offset, offset, static (in Libc.BtrfsSearchHeader h, ReadOnlySpan<byte> d) => BtrfsFileExtentRecord.Parse(h.Offset, d)))
                    {
                        if (item.IsDataExtent && item.DiskBytenr == bytenr)
                        {
                            found.Add((item.ExtentOffset, item.ExtentOffset + item.NumBytes));
                        }
                    }
                }
                catch (Btrfs.Core.FileOperationException)
                {
                    continue; // a root being deleted (ENOENT), or gone meanwhile: nothing to add from it
                }

                foreach ((ulong, ulong) range in found)
                {
                    yield return range;
                }
            }
        }

        /// <summary>
        /// LOGICAL_INO_V2 with IGNORE_OFFSET: every reference to the extent that contains
        /// <paramref name="logical"/>, added to <paramref name="into"/>. The <paramref name="buffer"/> grows
        /// (up to the kernel's 16 MiB) while references are missing and is kept for the next call;
        /// <paramref name="missed"/> is how many did not fit even then. 0 or the errno (ENOENT: no extent
        /// item there, or not committed yet; EINVAL: a metadata address).
        /// </summary>
        internal static unsafe int TryReferences(SafeFileDescriptor fd, ulong logical, ref byte[] buffer, List<ExtentReference> into, out long missed)
        {
            missed = 0;
            while (true)
            {
                var args = new Libc.BtrfsLogicalInoArgs { Logical = logical, Size = (ulong)buffer.Length, Flags = Libc.BTRFS_LOGICAL_INO_ARGS_IGNORE_OFFSET };
                Array.Clear(buffer, 0, Libc.DataContainerHeaderSize);
                fixed (byte* p = buffer)
                {
                    args.Inodes = (ulong)p;
                    if (Libc.Ioctl(fd, Libc.BTRFS_IOC_LOGICAL_INO_V2, &args) < 0)
                    {
                        return Errno.Last;
                    }
                }

                Libc.BtrfsDataContainer c = MemoryMarshal.Read<Libc.BtrfsDataContainer>(buffer);
                if ((c.BytesMissing == 0 && c.ElemMissed == 0) || buffer.Length >= Libc.BTRFS_INSPECT_MAX_BUFFER)
                {
                    ReadOnlySpan<byte> values = buffer.AsSpan(Libc.DataContainerHeaderSize);
                    for (int i = 0; i < (int)(c.ElemCount / 3); i++)
                    {
                        ReadOnlySpan<byte> r = values.Slice(i * 24, 24);
                        into.Add(new ExtentReference(
                            BinaryPrimitives.ReadUInt64LittleEndian(r),
                            BinaryPrimitives.ReadUInt64LittleEndian(r[8..]),
                            BinaryPrimitives.ReadUInt64LittleEndian(r[16..])));
                    }

                    missed = c.ElemMissed / 3;
                    return 0;
                }

                long wanted = (long)buffer.Length + c.BytesMissing + 4096;
                buffer = new byte[(int)Math.Min(Libc.BTRFS_INSPECT_MAX_BUFFER, Math.Max(wanted, (long)buffer.Length * 2))];
            }
        }

        /// <summary>
        /// INO_PATHS on a subvolume's root directory: the names of <paramref name="inode"/> relative to it,
        /// added to <paramref name="into"/>; <paramref name="cut"/> when more names exist than fit in the
        /// kernel's 4 KiB. A name that is not valid UTF-8 (no PowerShell path can hold it, and a decoded one would name
        /// another file: U+FFFD for each bad byte) goes to <paramref name="notUtf8"/> instead, its bytes shown as \xNN.
        /// 0 or the errno (ENOENT: no such inode).
        /// </summary>
        internal static unsafe int TryPaths(SafeFileDescriptor subvolumeRoot, ulong inode, List<string> into, out bool cut, List<string> notUtf8)
        {
            cut = false;
            byte* container = stackalloc byte[InoPathsBufferSize];
            new Span<byte>(container, Libc.DataContainerHeaderSize).Clear();
            var args = new Libc.BtrfsInoPathArgs { Inum = inode, Size = InoPathsBufferSize, FsPath = (ulong)container };
            if (Libc.Ioctl(subvolumeRoot, Libc.BTRFS_IOC_INO_PATHS, &args) < 0)
            {
                return Errno.Last;
            }

            var data = new ReadOnlySpan<byte>(container, InoPathsBufferSize);
            Libc.BtrfsDataContainer c = MemoryMarshal.Read<Libc.BtrfsDataContainer>(data);
            cut = c.ElemMissed > 0;
            ReadOnlySpan<byte> values = data[Libc.DataContainerHeaderSize..];
            for (int i = 0; i < (int)c.ElemCount; i++)
            {
                // Each value is the offset of a NUL-terminated path from the start of the value array.
                int start = (int)BinaryPrimitives.ReadUInt64LittleEndian(values[(i * 8)..]);
                ReadOnlySpan<byte> bytes = Terminated(values[start..]);
                if (DirectoryListing.Exact(bytes) is string name)
                {
                    into.Add(name);
                }
                else
                {
                    notUtf8.Add(DirectoryListing.Escaped(bytes));
                }
            }

            return 0;
        }

        /// <summary>
        /// INO_LOOKUP of <paramref name="objectId"/> in subvolume <paramref name="tree"/> (0: the one
        /// <paramref name="fd"/> is in): <paramref name="treeId"/> is the subvolume, <paramref name="path"/>
        /// the directory's path in it with a trailing '/' ("" for its root). 0 or the errno (EILSEQ, ours: the path is not
        /// valid UTF-8, so no path here can name it; <paramref name="path"/> is then the path with U+FFFD for each byte
        /// that is not, for messages only).
        /// </summary>
        internal static unsafe int TryLookup(SafeFileDescriptor fd, ulong tree, ulong objectId, out ulong treeId, out string path)
        {
            Libc.BtrfsInoLookupArgs args = default;
            args.TreeId = tree;
            args.ObjectId = objectId;
            if (Libc.Ioctl(fd, Libc.BTRFS_IOC_INO_LOOKUP, &args) < 0)
            {
                (treeId, path) = (0, string.Empty);
                return Errno.Last;
            }

            treeId = args.TreeId;
            ReadOnlySpan<byte> bytes = Terminated(new ReadOnlySpan<byte>(args.Name, Libc.BtrfsInoLookupArgs.NameMax));
            if (DirectoryListing.Exact(bytes) is not string found)
            {
                path = Encoding.UTF8.GetString(bytes);
                return Errno.EILSEQ;
            }

            path = found;
            return 0;
        }

        /// <summary>The first ROOT_BACKREF item of subvolume <paramref name="id"/> in the root tree (tree search: root only), or null when it has none (being deleted).</summary>
        internal static RootBackref? BackrefOf(OpenFile anchor, ulong id)
        {
            foreach (BtrfsItem backref in BtrfsSearch.Search(anchor, Libc.BTRFS_ROOT_TREE_OBJECTID, id, id, Libc.BTRFS_ROOT_BACKREF_KEY, Libc.BTRFS_ROOT_BACKREF_KEY))
            {
                // struct btrfs_root_ref: dirid, sequence, name_len, name; the key's offset is the parent subvolume.
                int nameLength = backref.U16(16);
                ReadOnlySpan<byte> name = backref.Data.AsSpan(Libc.RootRefSize, nameLength);
                return DirectoryListing.Exact(name) is string exact
                    ? new RootBackref(backref.Offset, backref.U64(0), exact, true)
                    : new RootBackref(backref.Offset, backref.U64(0), Encoding.UTF8.GetString(name), false);
            }

            return null;
        }

        /// <summary>
        /// The owner and mode of inode <paramref name="inode"/> of subvolume <paramref name="tree"/> (its INODE_ITEM, read from
        /// the tree: tree search, root only), or null when it has none: the permissions of a directory no mount reaches.
        /// </summary>
        internal static (uint Uid, uint Mode)? OwnerAndModeOf(OpenFile anchor, ulong tree, ulong inode) =>
            InodeItemOf(anchor, tree, inode) is byte[] item
                ? (System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(item.AsSpan(44)), System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(item.AsSpan(52)))
                : null;

        /// <summary>
        /// The flags of inode <paramref name="inode"/> of subvolume <paramref name="tree"/> (its INODE_ITEM's flags, offset
        /// 64: BTRFS_INODE_NODATASUM 1, NODATACOW 2, ...), read from the tree (needs CAP_SYS_ADMIN: throws AccessDenied
        /// without it); null when there is no such item.
        /// </summary>
        internal static ulong? InodeFlagsOf(OpenFile anchor, ulong tree, ulong inode) =>
            InodeItemOf(anchor, tree, inode) is byte[] item ? System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(item.AsSpan(64)) : null;

        /// <summary>Whether the inode item's flags (<see cref="InodeFlagsOf"/>) say immutable or append-only (chattr +i, +a); false where there is no item.</summary>
        internal static bool IsImmutableOrAppendOnlyInTree(OpenFile anchor, ulong tree, ulong inode) =>
            InodeFlagsOf(anchor, tree, inode) is ulong flags && (flags & (Libc.BTRFS_INODE_IMMUTABLE | Libc.BTRFS_INODE_APPEND)) != 0;

        /// <summary>
        /// As <see cref="InodeFlagsOf"/>, with the item's change time (btrfs_inode_item.ctime: seconds, u64 at 124;
        /// nanoseconds, u32 at 132): an item whose change time is the inode's (statx) is the inode as it is now, since every
        /// change of flags or data moves it; an older one lags until the next commit. Null when there is no such item.
        /// </summary>
        internal static (ulong Flags, FileTime Changed)? InodeFlagsAndChangeTimeOf(OpenFile anchor, ulong tree, ulong inode) =>
            InodeItemOf(anchor, tree, inode) is byte[] item && item.Length >= 136
                ? (System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(item.AsSpan(64)),
                   new FileTime((long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(item.AsSpan(124)), System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(item.AsSpan(132))))
                : null;

        /// <summary>
        /// The INODE_ITEM of inode <paramref name="inode"/> of subvolume <paramref name="tree"/> (btrfs_inode_item: generation,
        /// transid, size, nbytes, block_group (u64 each), nlink, uid, gid, mode (u32 each, from 40), rdev (u64, 56), flags
        /// (u64, 64), ...), read from the tree (needs CAP_SYS_ADMIN); null when there is none, or it is too short to hold
        /// the flags.
        /// </summary>
        private static byte[]? InodeItemOf(OpenFile anchor, ulong tree, ulong inode)
        {
            foreach (BtrfsItem item in BtrfsSearch.Search(anchor, tree, inode, inode, Libc.BTRFS_INODE_ITEM_KEY, Libc.BTRFS_INODE_ITEM_KEY))
            {
                if (item.Data.Length >= 72)
                {
                    return item.Data;
                }
            }

            return null;
        }

        /// <summary>A NUL-terminated name or path's bytes, without the NUL.</summary>
        private static ReadOnlySpan<byte> Terminated(ReadOnlySpan<byte> s)
        {
            int end = s.IndexOf((byte)0);
            return end < 0 ? s : s[..end];
        }
    }
}
