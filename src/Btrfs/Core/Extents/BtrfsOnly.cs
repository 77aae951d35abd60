namespace Btrfs.Core
{
    using Btrfs.Kernel;

    /// <summary>The refusal every btrfs-only reader gives a file elsewhere.</summary>
    internal static class BtrfsOnly
    {
        /// <summary>Throws the NotSupported error for a file that is not on btrfs (<paramref name="because"/> says what only btrfs has), and NotASubvolume for the empty directory standing in for a nested subvolume in a snapshot.</summary>
        internal static void Require(OpenFile file, string what, string? advice = null, string because = "only btrfs has extent items, compression accounting and extent back references")
        {
            if (file.FileSystem.Kind != FileSystemKind.Btrfs)
            {
                throw new FileOperationException(
                    FileErrorKind.NotSupported,
                    0,
                    "statfs",
                    file.Path,
                    $"Cannot {what} '{file.Path}': it is on {file.FileSystem.DisplayName}, and {because}." + (advice is null ? string.Empty : " " + advice))
                {
                    SameForFileSystem = true,
                };
            }

            if (file.IsDirectory && file.Status.Inode == BtrfsInspect.NestedSubvolumePlaceholderInode)
            {
                // btrfs gives this directory no ioctls at all (ENOTTY): say what it is instead.
                throw new FileOperationException(
                    FileErrorKind.NotASubvolume,
                    Errno.ENOTTY,
                    "statx",
                    file.Path,
                    $"Cannot {what} '{file.Path}': it is the empty directory btrfs shows in a snapshot where the snapshot's source had a nested subvolume (a snapshot does not take nested subvolumes with it). It is no subvolume and no real directory: nothing is in it, nothing can be made in it. Snapshot the nested subvolume of the source separately if the copy needs it; this empty directory can be removed with Remove-Item.");
            }
        }
    }
}
