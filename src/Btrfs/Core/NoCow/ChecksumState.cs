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
        /// Whether a COW btrfs file's inode has NODATASUM (made while the filesystem was mounted nodatasum), read from the
        /// tree where the item there is the inode as it is now (its change time the inode's: a flag or data changed since
        /// the last commit leaves the item behind, a review: "Set-NoCow -Disable", then Test-NoCow, said NODATASUM): false
        /// where it cannot be read or lags. A caller refused once (no CAP_SYS_ADMIN) is not asked again in this process:
        /// a file per call would cost it an exception each (Test-NoCow over a tree).
        /// </summary>
        internal static bool NoDataSumFlag(OpenFile file)
        {
            if (searchRefused || file.FileSystem.Kind != FileSystemKind.Btrfs)
            {
                return false;
            }

            try
            {
                return BtrfsInspect.InodeFlagsAndChangeTimeOf(file, 0, file.Status.Inode) is var (flags, changed)
                    && (flags & NoDataSum) != 0
                    && FileStatus.Of(file.Handle) is FileStatus now && now.ChangeTime == changed;
            }
            catch (FileOperationException ex)
            {
                searchRefused |= ex.Kind == FileErrorKind.AccessDenied;
                return false;
            }
        }

        private static volatile bool searchRefused;

        /// <summary>
        /// True when the file's data has no checksums, as far as can be told: the NOCOW attribute says so for certain (the
        /// kernel sets NODATASUM with it on a regular file); without it, the inode item's NODATASUM flag where the tree can
        /// be read (<paramref name="search"/>, root) says so too, but not for certain (<paramref name="byFlag"/>): the item
        /// in the tree lags behind the inode until the next commit (a "chattr -C" of a moment ago still shows there; a
        /// review). False: the file has checksums, for certain unless the filesystem is mounted nodatasum now (a file
        /// made a moment ago may not be in the tree yet). False off btrfs.
        /// </summary>
        internal static bool Absent(OpenFile file, bool search, out bool byFlag)
        {
            byFlag = false;
            if (file.FileSystem.Kind != FileSystemKind.Btrfs)
            {
                return false;
            }

            if (((InodeAttributes.TryGet(file.Handle, file.Path) ?? InodeFlags.None) & InodeFlags.NoCow) != 0)
            {
                return true;
            }

            if (search)
            {
                try
                {
                    // Tree 0: the tree of the descriptor's own subvolume.
                    if (BtrfsInspect.InodeFlagsOf(file, 0, file.Status.Inode) is ulong flags && (flags & NoDataSum) != 0)
                    {
                        byFlag = true;
                        return true;
                    }
                }
                catch (FileOperationException)
                {
                    // Not readable (no CAP_SYS_ADMIN): as without the flag.
                }
            }

            return false;
        }
    }
}
