namespace Btrfs.Core
{
    using System;
    using Btrfs.Kernel;

    /// <summary>Test-NoCow's Core: reads the attribute, the parent's, the mount and the shared extents; never changes anything.</summary>
    public static class NoCowInspector
    {
        /// <summary>Inspects a regular file or directory (symbolic links are followed). Throws <see cref="FileOperationException"/>.</summary>
        public static NoCowStatus Inspect(string path) => Inspect(path, checksums: true);

        /// <summary>As <see cref="Inspect(string)"/>; <paramref name="checksums"/>: read a COW file's NODATASUM flag from the tree (a search).</summary>
        internal static NoCowStatus Inspect(string path, bool checksums)
        {
            using OpenFile item = OpenFile.Open(path, OpenOptions.AllowDirectory);
            return Inspect(item, checksums);
        }

        /// <summary>
        /// Inspects an item that is already open. <paramref name="checksums"/>: read a COW btrfs file's NODATASUM flag
        /// from the tree (root only; a search per file), for its reason and <see cref="NoCowStatus.IsCompressed"/>;
        /// without it, a file made on a nodatasum mount is described as checksummed.
        /// </summary>
        internal static NoCowStatus Inspect(OpenFile item, bool checksums = true)
        {
            ArgumentNullException.ThrowIfNull(item);
            FileItemType type = item.IsDirectory ? FileItemType.Directory : FileItemType.File;
            long size = item.IsDirectory ? 0 : item.Size;
            (long sharedBytes, long sharedCount) = item.IsDirectory ? (0, 0) : SharedExtents(item);
            bool btrfs = item.FileSystem.Kind == FileSystemKind.Btrfs;
            InodeFlags flags = btrfs ? InodeAttributes.Get(item.Handle, item.Path) : InodeFlags.None;
            MountEntry? mount = btrfs ? MountTable.Current().For(item) : null;
            bool mountNoDataCow = mount?.HasOption("nodatacow") == true;
            string? compressOption = mount?.CompressOption;
            bool? parentNoCow = btrfs ? (item.Directory is { } dir ? DirectoryIsNoCow(dir, item.Path) : ParentIsNoCow(item.Path)) : false;

            // A COW file made while the filesystem was mounted nodatasum has no checksums, and btrfs compresses nothing
            // without them (inode_can_compress): only its inode item in the tree says so, which only root may read.
            bool noDataSum = btrfs && type == FileItemType.File && (flags & InodeFlags.NoCow) == 0 && checksums && ChecksumState.NoDataSumFlag(item);
            bool placeholder = BtrfsOnly.IsPlaceholder(item.Status, item.FileSystem.Kind);
            string? readOnlyWhere = btrfs && !placeholder && (flags & InodeFlags.NoCow) == 0 ? ReadOnlyWhere(item) : null;
            var facts = new NoCowFacts(type, item.FileSystem, flags, parentNoCow == true, mountNoDataCow, compressOption, size, sharedBytes, noDataSum, placeholder, readOnlyWhere);

            // A directory on a nodatacow mount: the files made in it are NOCOW whatever it has (the kernel sets NODATACOW
            // on every new file after what it inherits; a compression attribute or property is passed on too, and
            // NOCOW wins: nothing is compressed, writes go in place; seen on Linux 6.18 with lsattr, compsize and FIEMAP).
            bool newFilesNoCow = btrfs && type == FileItemType.Directory && mountNoDataCow;
            return new NoCowStatus(
                item.Path,
                type,
                item.FileSystem.Kind,
                btrfs,
                (flags & InodeFlags.NoCow) != 0,
                mountNoDataCow,
                parentNoCow,
                // Whether compression applies to what is written to it: never to a NOCOW file, nor to one marked "do not
                // compress" (chattr +m, or the compression property "none"), whatever the mount says.
                !newFilesNoCow && !noDataSum && (flags & (InodeFlags.NoCow | InodeFlags.NoCompress)) == 0 && ((flags & InodeFlags.Compress) != 0 || compressOption is not null || (btrfs && NoCowAttribute.CompressionPropertyOf(item) is not null)),
                size,
                sharedBytes,
                sharedCount,
                NoCowReason.Explain(facts))
            {
                // A directory on a nodatacow mount: new files in it are NOCOW, as its reason says (before: False, and with
                // the compression attribute False still; found by a hostile review).
                NoCowInEffect = (flags & InodeFlags.NoCow) != 0 || newFilesNoCow,
            };
        }

        /// <summary>
        /// Why a COW btrfs item cannot be made NOCOW where it is, for its reason ("it is in the read-only snapshot ..."), or
        /// null: the advice to use Set-NoCow or ConvertTo-NoCow would only be refused there.
        /// </summary>
        private static string? ReadOnlyWhere(OpenFile item) =>
            item.IsReadOnlyMount ? "it is on a read-only mount"
            : BtrfsSubvolume.Of(item) is { IsReadOnly: true } sv ? $"it is in the read-only snapshot or subvolume '{sv.Name}' (id {sv.Id})"
            : null;

        /// <summary>Bytes and count of the extents FIEMAP marks shared; 0 where there is no FIEMAP.</summary>
        internal static (long Bytes, long Count) SharedExtents(OpenFile file)
        {
            if (file.FileSystem.Kind is not (FileSystemKind.Btrfs or FileSystemKind.Xfs or FileSystemKind.Ext4))
            {
                return (0, 0);
            }

            return Fiemap.Shared(file.Handle, file.Path);
        }

        /// <summary>
        /// The NOCOW attribute of the open directory a file was opened in; null when it cannot be read (a directory
        /// this user may search but not read is only named, and its attributes cannot be asked for).
        /// </summary>
        private static bool? DirectoryIsNoCow(Interop.SafeFileDescriptor dir, string path)
        {
            try
            {
                return (InodeAttributes.Get(dir, path) & InodeFlags.NoCow) != 0;
            }
            catch (FileOperationException)
            {
                return null;
            }
        }

        /// <summary>The NOCOW attribute of the directory holding <paramref name="path"/> (after resolving links); null when it cannot be read.</summary>
        internal static bool? ParentIsNoCow(string path)
        {
            string full = Files.RealPath(path) ?? System.IO.Path.GetFullPath(path);
            string parent = System.IO.Path.GetDirectoryName(full) ?? full;
            try
            {
                using OpenFile dir = OpenFile.Open(parent, OpenOptions.AllowDirectory);
                return (InodeAttributes.Get(dir.Handle, parent) & InodeFlags.NoCow) != 0;
            }
            catch (FileOperationException)
            {
                return null;
            }
        }
    }
}
