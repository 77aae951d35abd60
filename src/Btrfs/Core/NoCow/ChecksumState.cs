namespace Btrfs.Core
{
    using Btrfs.Kernel;

    /// <summary>
    /// Whether a btrfs file's data has checksums: btrfs shares extents only between two files that both have them or
    /// both have none (EINVAL otherwise: it compares the inodes' NODATASUM flags). A NOCOW file has none; so has a file
    /// made while the filesystem was mounted with nodatasum, which shows no attribute for it (lsattr shows no C).
    /// </summary>
    internal static class ChecksumState
    {
        /// <summary>BTRFS_INODE_NODATASUM.</summary>
        private const ulong NoDataSum = 1;

        /// <summary>
        /// True when the file's data has no checksums: from its inode item's NODATASUM flag where the tree can be read
        /// (<paramref name="search"/>, root: <paramref name="exact"/> true), else from the NOCOW attribute (a file made
        /// under nodatasum then counts as having them). False off btrfs (exact).
        /// </summary>
        internal static bool Absent(OpenFile file, bool search, out bool exact)
        {
            exact = true;
            if (file.FileSystem.Kind != FileSystemKind.Btrfs)
            {
                return false;
            }

            if (search)
            {
                try
                {
                    if (BtrfsInspect.InodeFlagsOf(file, SubvolumeMap.SubvolumeIdOf(file), file.Status.Inode) is ulong flags)
                    {
                        return (flags & NoDataSum) != 0;
                    }
                }
                catch (FileOperationException)
                {
                    // Not readable (no CAP_SYS_ADMIN): the attribute below.
                }
            }

            exact = false;
            return ((InodeAttributes.TryGet(file.Handle, file.Path) ?? InodeFlags.None) & InodeFlags.NoCow) != 0;
        }
    }
}
