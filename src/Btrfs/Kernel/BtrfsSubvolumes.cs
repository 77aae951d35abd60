namespace Btrfs.Kernel
{
    using System;
    using System.Buffers.Binary;
    using System.Collections.Generic;
    using System.Runtime.InteropServices;
    using System.Text;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>
    /// A subvolume's root item: from GET_SUBVOL_INFO (any user, through a descriptor in the subvolume)
    /// or from the root tree (root, every subvolume at once). Uuids are in the byte order btrfs prints.
    /// </summary>
    internal sealed record BtrfsRootRecord(
        ulong Id,
        string Name,
        ulong ParentId,
        ulong DirId,
        ulong Generation,
        ulong Flags,
        Guid Uuid,
        Guid ParentUuid,
        Guid ReceivedUuid,
        ulong CTransId,
        ulong OTransId,
        DateTime? CreationTime,
        DateTime? ChangeTime)
    {
        /// <summary>The root item's refs (root tree only; 0 once deleted and not yet cleaned, -1 when not known).</summary>
        internal long Refs { get; init; } = -1;

        internal bool IsReadOnly => (Flags & Libc.BTRFS_ROOT_SUBVOL_RDONLY) != 0;
    }

    /// <summary>
    /// Subvolume ioctls through descriptors: facts about one (GET_SUBVOL_INFO), its children
    /// (GET_SUBVOL_ROOTREF, INO_LOOKUP_USER: no privilege), every subvolume and the default one (root
    /// tree search: root), create, snapshot, delete, wait for the cleaner. Errors name the path given.
    /// </summary>
    internal static class BtrfsSubvolumes
    {
        /// <summary>The longest subvolume name, in bytes of UTF-8.</summary>
        internal const int NameMax = Libc.BTRFS_VOL_NAME_MAX;

        /// <summary>The longest path from the top level the kernel deletes a subvolume by (btrfs_get_subvol_name_from_objectid: PATH_MAX with its NUL).</summary>
        internal const int DeletablePathMax = 4095;

        /// <summary>
        /// The longest path of a directory inside a subvolume (with its trailing '/') INO_LOOKUP_USER returns, for a child
        /// subvolume in it (btrfs_search_path_in_tree_user: BTRFS_INO_LOOKUP_USER_PATH_MAX with its NUL); longer, ENAMETOOLONG.
        /// </summary>
        internal const int LookupPathMax = Libc.BtrfsInoLookupUserArgs.PathMax - 1;

        /// <summary>GET_SUBVOL_INFO of the subvolume holding <paramref name="fd"/>; any user.</summary>
        internal static unsafe BtrfsRootRecord Info(SafeFileDescriptor fd, string path)
        {
            Libc.BtrfsSubvolInfo info = default;
            Errno.Check(Libc.Ioctl(fd, Libc.BTRFS_IOC_GET_SUBVOL_INFO, &info) < 0 ? -1 : 0, "BTRFS_IOC_GET_SUBVOL_INFO", path, "Cannot read the subvolume of");
            string name = Marshal.PtrToStringUTF8((nint)info.Name) ?? string.Empty;
            return new BtrfsRootRecord(
                info.TreeId,
                name,
                info.ParentId,
                info.DirId,
                info.Generation,
                info.Flags,
                Uuid(new ReadOnlySpan<byte>(info.Uuid, 16)),
                Uuid(new ReadOnlySpan<byte>(info.ParentUuid, 16)),
                Uuid(new ReadOnlySpan<byte>(info.ReceivedUuid, 16)),
                info.CTransId,
                info.OTransId,
                Time(info.OTimeSec, info.OTimeNsec),
                Time(info.CTimeSec, info.CTimeNsec));
        }

        /// <summary>The subvolumes directly under the one holding <paramref name="fd"/> (tree id, directory id in it); any user.</summary>
        internal static unsafe List<(ulong TreeId, ulong DirId)> Children(SafeFileDescriptor fd, string path)
        {
            var children = new List<(ulong, ulong)>();
            Libc.BtrfsGetSubvolRootRefArgs args = default;
            while (true)
            {
                int rc = Libc.Ioctl(fd, Libc.BTRFS_IOC_GET_SUBVOL_ROOTREF, &args);
                int errno = rc < 0 ? Errno.Last : 0;
                if (rc < 0 && errno != Libc.EOVERFLOW)
                {
                    throw FileOperationException.FromErrno(errno, "BTRFS_IOC_GET_SUBVOL_ROOTREF", path, "Cannot list the subvolumes under");
                }

                for (int i = 0; i < args.NumItems; i++)
                {
                    children.Add((args.RootRefs[2 * i], args.RootRefs[(2 * i) + 1]));
                }

                if (errno != Libc.EOVERFLOW || args.NumItems == 0)
                {
                    return children;
                }

                // More than fit: the kernel set min_treeid to continue from.
                args.NumItems = 0;
            }
        }

        /// <summary>
        /// INO_LOOKUP_USER: the name of child subvolume <paramref name="treeId"/> and the path of the directory
        /// <paramref name="dirId"/> holding it, from the root of the subvolume holding <paramref name="fd"/>
        /// (with a trailing '/', "" for that root). 0 or the errno (EACCES: a directory on the way is not readable and searchable;
        /// EILSEQ, ours: the name or a directory on the way is not valid UTF-8, so no path here can name it).
        /// </summary>
        internal static unsafe int TryLookupChild(SafeFileDescriptor fd, ulong treeId, ulong dirId, out string name, out string directory)
        {
            Libc.BtrfsInoLookupUserArgs args = default;
            args.DirId = dirId;
            args.TreeId = treeId;
            name = directory = string.Empty;
            if (Libc.Ioctl(fd, Libc.BTRFS_IOC_INO_LOOKUP_USER, &args) < 0)
            {
                return Errno.Last;
            }

            var nameBytes = new System.ReadOnlySpan<byte>(args.Name, 256);
            var pathBytes = new System.ReadOnlySpan<byte>(args.Path, Libc.BtrfsInoLookupUserArgs.PathMax);
            nameBytes = nameBytes.IndexOf((byte)0) is int n and >= 0 ? nameBytes[..n] : nameBytes;
            pathBytes = pathBytes.IndexOf((byte)0) is int m and >= 0 ? pathBytes[..m] : pathBytes;
            if (!System.Text.Unicode.Utf8.IsValid(nameBytes) || !System.Text.Unicode.Utf8.IsValid(pathBytes))
            {
                return Errno.EILSEQ;
            }

            name = System.Text.Encoding.UTF8.GetString(nameBytes);
            directory = System.Text.Encoding.UTF8.GetString(pathBytes);
            return 0;
        }

        /// <summary>
        /// The top directory of subvolume <paramref name="id"/>, opened (O_PATH: only named) by its file handle
        /// through <paramref name="fileSystem"/>, any descriptor on the filesystem: also a subvolume no mount
        /// reaches. Root only (the generation of its top directory is read by tree search; open_by_handle_at
        /// needs CAP_DAC_READ_SEARCH). Null when the subvolume is gone or being deleted; throws otherwise.
        /// <paramref name="readable"/>: opened for reading (O_RDONLY), so its attributes can be read too.
        /// </summary>
        internal static unsafe SafeFileDescriptor? OpenTopById(SafeFileDescriptor fileSystem, string path, ulong id, bool readable = false)
        {
            ulong? generation = null;
            try
            {
                foreach (ulong g in BtrfsSearch.Search(
                    fileSystem,
                    path,
                    id,
                    Libc.BTRFS_FIRST_FREE_OBJECTID,
                    Libc.BTRFS_FIRST_FREE_OBJECTID,
                    Libc.BTRFS_INODE_ITEM_KEY,
                    Libc.BTRFS_INODE_ITEM_KEY,
                    0,
                    0,
                    static (in Libc.BtrfsSearchHeader h, ReadOnlySpan<byte> d) => BinaryPrimitives.ReadUInt64LittleEndian(d))) // btrfs_inode_item: generation first
                {
                    generation = g;
                    break;
                }
            }
            catch (FileOperationException ex) when (ex.Errno == Errno.ENOENT)
            {
                return null; // no such tree (any more)
            }

            if (generation is not ulong gen)
            {
                return null;
            }

            var handle = new Libc.BtrfsFileHandle
            {
                HandleBytes = 20,
                HandleType = Libc.FILEID_BTRFS_WITHOUT_PARENT,
                ObjectId = Libc.BTRFS_FIRST_FREE_OBJECTID,
                RootObjectId = id,
                Generation = unchecked((uint)gen),
            };
            SafeFileDescriptor fd = Libc.OpenByHandleAt(fileSystem, &handle, (readable ? Libc.O_RDONLY : Libc.O_PATH) | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
            if (!fd.IsInvalid)
            {
                return fd;
            }

            int errno = Errno.Last;
            fd.Dispose();
            return errno is Errno.ENOENT or Errno.ESTALE
                ? null
                : throw FileOperationException.FromErrno(errno, "open_by_handle_at", path, $"Cannot open subvolume {id} by its id on the filesystem of", "Nothing was changed.");
        }

        /// <summary>
        /// Every subvolume of the filesystem (not the top level) with its name and place from its back
        /// reference, read from the root tree; a subvolume deleted but not yet cleaned has no back
        /// reference and refs 0. Root only (TREE_SEARCH).
        /// </summary>
        internal static List<BtrfsRootRecord> All(SafeFileDescriptor fd, string path)
        {
            var roots = new Dictionary<ulong, BtrfsRootRecord>();
            var backrefs = new Dictionary<ulong, (ulong Parent, ulong Dir, string Name)>();
            foreach ((ulong id, uint type, ulong offset, BtrfsRootRecord? root, (ulong Dir, string Name)? backref) in BtrfsSearch.Search(
                fd,
                path,
                Libc.BTRFS_ROOT_TREE_OBJECTID,
                Libc.BTRFS_FIRST_FREE_OBJECTID,
                Libc.BTRFS_LAST_FREE_OBJECTID,
                Libc.BTRFS_ROOT_ITEM_KEY,
                Libc.BTRFS_ROOT_BACKREF_KEY,
                0,
                ulong.MaxValue,
                static (in Libc.BtrfsSearchHeader h, ReadOnlySpan<byte> d) =>
                    (h.ObjectId, h.Type, h.Offset,
                     h.Type == Libc.BTRFS_ROOT_ITEM_KEY ? ParseRootItem(h.ObjectId, d) : null,
                     h.Type == Libc.BTRFS_ROOT_BACKREF_KEY ? ParseRootRef(d) : ((ulong, string)?)null)))
            {
                if (root is not null)
                {
                    roots[id] = root; // the last ROOT_ITEM of an id is the current one
                }
                else if (backref is { } b)
                {
                    backrefs[id] = (offset, b.Dir, b.Name);
                }
            }

            var all = new List<BtrfsRootRecord>(roots.Count);
            foreach (BtrfsRootRecord r in roots.Values)
            {
                all.Add(backrefs.TryGetValue(r.Id, out var b) ? r with { ParentId = b.Parent, DirId = b.Dir, Name = b.Name } : r);
            }

            all.Sort((a, b) => a.Id.CompareTo(b.Id));
            return all;
        }

        /// <summary>The root item of one subvolume from the root tree (the top level, 5, included); null when there is none. Root only.</summary>
        internal static BtrfsRootRecord? RootItem(SafeFileDescriptor fd, string path, ulong id)
        {
            BtrfsRootRecord? found = null;
            foreach (BtrfsRootRecord? r in BtrfsSearch.Search(fd, path, Libc.BTRFS_ROOT_TREE_OBJECTID, id, id, Libc.BTRFS_ROOT_ITEM_KEY, Libc.BTRFS_ROOT_ITEM_KEY, 0, ulong.MaxValue, static (in Libc.BtrfsSearchHeader h, ReadOnlySpan<byte> d) => ParseRootItem(h.ObjectId, d)))
            {
                found = r ?? found;
            }

            return found;
        }

        /// <summary>The default subvolume (the "default" entry of the root tree's directory), 5 when it was never set. Root only.</summary>
        internal static ulong DefaultId(SafeFileDescriptor fd, string path)
        {
            foreach (ulong? id in BtrfsSearch.Search(
                fd,
                path,
                Libc.BTRFS_ROOT_TREE_OBJECTID,
                Libc.BTRFS_ROOT_TREE_DIR_OBJECTID,
                Libc.BTRFS_ROOT_TREE_DIR_OBJECTID,
                Libc.BTRFS_DIR_ITEM_KEY,
                Libc.BTRFS_DIR_ITEM_KEY,
                0,
                ulong.MaxValue,
                static (in Libc.BtrfsSearchHeader h, ReadOnlySpan<byte> d) => ParseDefaultEntry(d)))
            {
                if (id is ulong found)
                {
                    return found;
                }
            }

            return Libc.BTRFS_FS_TREE_OBJECTID;
        }

        /// <summary>SUBVOL_CREATE_V2: a new empty subvolume <paramref name="name"/> in the directory <paramref name="parent"/>.</summary>
        internal static unsafe int TryCreate(SafeFileDescriptor parent, string name)
        {
            Libc.BtrfsVolArgsV2 args = default;
            if (!SetName(ref args, name))
            {
                return Errno.ENAMETOOLONG;
            }

            return Libc.Ioctl(parent, Libc.BTRFS_IOC_SUBVOL_CREATE_V2, &args) < 0 ? Errno.Last : 0;
        }

        /// <summary>SNAP_CREATE_V2: a snapshot of the subvolume whose root is <paramref name="source"/>, named <paramref name="name"/> in <paramref name="parent"/>.</summary>
        internal static unsafe int TrySnapshot(SafeFileDescriptor source, SafeFileDescriptor parent, string name, bool readOnly)
        {
            Libc.BtrfsVolArgsV2 args = default;
            if (!SetName(ref args, name))
            {
                return Errno.ENAMETOOLONG;
            }

            bool added = false;
            try
            {
                source.DangerousAddRef(ref added);
                args.Fd = source.DangerousGetHandle();
                args.Flags = readOnly ? Libc.BTRFS_SUBVOL_RDONLY : 0;
                return Libc.Ioctl(parent, Libc.BTRFS_IOC_SNAP_CREATE_V2, &args) < 0 ? Errno.Last : 0;
            }
            finally
            {
                if (added)
                {
                    source.DangerousRelease();
                }
            }
        }

        /// <summary>SNAP_DESTROY_V2 by name: deletes the subvolume <paramref name="name"/> of the directory <paramref name="parent"/>.</summary>
        internal static unsafe int TryDelete(SafeFileDescriptor parent, string name)
        {
            Libc.BtrfsVolArgsV2 args = default;
            if (!SetName(ref args, name))
            {
                return Errno.ENAMETOOLONG;
            }

            return Libc.Ioctl(parent, Libc.BTRFS_IOC_SNAP_DESTROY_V2, &args) < 0 ? Errno.Last : 0;
        }

        /// <summary>SNAP_DESTROY_V2 by id (any descriptor on the filesystem): deletes the subvolume <paramref name="id"/>, wherever it is.</summary>
        internal static unsafe int TryDeleteById(SafeFileDescriptor anyOnFileSystem, ulong id)
        {
            Libc.BtrfsVolArgsV2 args = default;
            args.Flags = Libc.BTRFS_SUBVOL_SPEC_BY_ID;
            args.SubvolId = id;
            return Libc.Ioctl(anyOnFileSystem, Libc.BTRFS_IOC_SNAP_DESTROY_V2, &args) < 0 ? Errno.Last : 0;
        }

        /// <summary>BTRFS_IOC_SYNC: commits and wakes the transaction thread, which pokes the cleaner to drop deleted subvolumes. 0 or the errno.</summary>
        internal static unsafe int TryCommitAndClean(SafeFileDescriptor fd) =>
            Libc.Ioctl(fd, Libc.BTRFS_IOC_SYNC, null) < 0 ? Errno.Last : 0;

        /// <summary>SUBVOL_SYNC_WAIT (newer kernels; this one, 6.18, has it): waits until the deleted subvolume <paramref name="id"/> is cleaned up. 0, or the errno (ENOTTY on older kernels).</summary>
        internal static unsafe int TryWaitCleaned(SafeFileDescriptor fd, ulong id)
        {
            var args = new Libc.BtrfsSubvolWait { SubvolId = id, Mode = Libc.BTRFS_SUBVOL_SYNC_WAIT_FOR_ONE };
            return Libc.Ioctl(fd, Libc.BTRFS_IOC_SUBVOL_SYNC_WAIT, &args) < 0 ? Errno.Last : 0;
        }

        private static unsafe bool SetName(ref Libc.BtrfsVolArgsV2 args, string name)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(name);
            if (bytes.Length > Libc.BTRFS_VOL_NAME_MAX)
            {
                return false;
            }

            fixed (byte* dst = args.Name)
            {
                bytes.CopyTo(new Span<byte>(dst, Libc.BtrfsVolArgsV2.NameMax));
            }

            return true;
        }

        /// <summary>A btrfs_root_item (reference: btrfs_tree.h); items of the old, shorter format have no uuids or times.</summary>
        private static BtrfsRootRecord? ParseRootItem(ulong id, ReadOnlySpan<byte> d)
        {
            if (d.Length < Libc.RootItemRefsOffset + 4)
            {
                return null;
            }

            // The uuids and times are valid only where generation_v2 equals generation (an older kernel that
            // wrote the item left them stale, as the kernel itself decides).
            bool full = d.Length >= Libc.RootItemOTimeOffset + 12
                && BinaryPrimitives.ReadUInt64LittleEndian(d[Libc.RootItemGenerationV2Offset..]) == BinaryPrimitives.ReadUInt64LittleEndian(d[Libc.RootItemGenerationOffset..]);
            return new BtrfsRootRecord(
                id,
                string.Empty,
                0,
                0,
                BinaryPrimitives.ReadUInt64LittleEndian(d[Libc.RootItemGenerationOffset..]),
                BinaryPrimitives.ReadUInt64LittleEndian(d[Libc.RootItemFlagsOffset..]),
                full ? Uuid(d.Slice(Libc.RootItemUuidOffset, 16)) : Guid.Empty,
                full ? Uuid(d.Slice(Libc.RootItemParentUuidOffset, 16)) : Guid.Empty,
                full ? Uuid(d.Slice(Libc.RootItemReceivedUuidOffset, 16)) : Guid.Empty,
                full ? BinaryPrimitives.ReadUInt64LittleEndian(d[Libc.RootItemCTransIdOffset..]) : 0,
                full ? BinaryPrimitives.ReadUInt64LittleEndian(d[Libc.RootItemOTransIdOffset..]) : 0,
                full ? Time(BinaryPrimitives.ReadUInt64LittleEndian(d[Libc.RootItemOTimeOffset..]), BinaryPrimitives.ReadUInt32LittleEndian(d[(Libc.RootItemOTimeOffset + 8)..])) : null,
                full ? Time(BinaryPrimitives.ReadUInt64LittleEndian(d[Libc.RootItemCTimeOffset..]), BinaryPrimitives.ReadUInt32LittleEndian(d[(Libc.RootItemCTimeOffset + 8)..])) : null)
            {
                Refs = BinaryPrimitives.ReadUInt32LittleEndian(d[Libc.RootItemRefsOffset..]),
            };
        }

        /// <summary>A btrfs_root_ref: the directory in the parent and the name.</summary>
        private static (ulong Dir, string Name)? ParseRootRef(ReadOnlySpan<byte> d)
        {
            if (d.Length < Libc.RootRefSize)
            {
                return null;
            }

            int length = BinaryPrimitives.ReadUInt16LittleEndian(d[16..]);
            return (BinaryPrimitives.ReadUInt64LittleEndian(d), Encoding.UTF8.GetString(d.Slice(Libc.RootRefSize, Math.Min(length, d.Length - Libc.RootRefSize))));
        }

        /// <summary>The location objectid of the dir item named "default" (several names can share one item).</summary>
        private static ulong? ParseDefaultEntry(ReadOnlySpan<byte> d)
        {
            while (d.Length >= Libc.DirItemSize)
            {
                int dataLength = BinaryPrimitives.ReadUInt16LittleEndian(d[25..]);
                int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(d[Libc.DirItemNameLengthOffset..]);
                if (d.Length < Libc.DirItemSize + nameLength + dataLength)
                {
                    return null;
                }

                if (d.Slice(Libc.DirItemSize, nameLength).SequenceEqual("default"u8))
                {
                    return BinaryPrimitives.ReadUInt64LittleEndian(d);
                }

                d = d[(Libc.DirItemSize + nameLength + dataLength)..];
            }

            return null;
        }

        /// <summary>A uuid in the order btrfs prints it (the bytes as stored, big-endian groups); Guid.Empty for none.</summary>
        private static Guid Uuid(ReadOnlySpan<byte> bytes) => new(bytes, bigEndian: true);

        private static DateTime? Time(ulong seconds, uint nanoseconds) =>
            seconds == 0 && nanoseconds == 0 ? null : DateTime.UnixEpoch.AddSeconds(seconds).AddTicks(nanoseconds / 100);
    }
}
