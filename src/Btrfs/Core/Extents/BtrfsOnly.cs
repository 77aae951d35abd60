namespace Btrfs.Core
{
    using Btrfs.Kernel;

    /// <summary>The refusal every btrfs-only reader gives a file elsewhere.</summary>
    internal static class BtrfsOnly
    {
        /// <summary>
        /// What the empty directory a btrfs snapshot shows in place of a nested subvolume of its source is (inode
        /// <see cref="BtrfsInspect.NestedSubvolumePlaceholderInode"/>), said wherever one is refused or passed over: "it is ...".
        /// </summary>
        internal const string PlaceholderIs = "it is the empty directory btrfs shows in a snapshot where the snapshot's source had a nested subvolume (a snapshot does not take nested subvolumes with it): it holds nothing, and btrfs takes no attribute or other change on it";

        /// <summary>Whether <paramref name="status"/>, of a file on <paramref name="kind"/>, is such a directory (inode 2 is no other file of btrfs's; ext4's top directory has it too).</summary>
        internal static bool IsPlaceholder(FileStatus status, FileSystemKind kind) =>
            status.IsDirectory && status.Inode == BtrfsInspect.NestedSubvolumePlaceholderInode && kind == FileSystemKind.Btrfs;

        /// <summary>
        /// The refusal of such a directory by every command that would read or change it (SubvolumePlaceholder; before: two
        /// versions, NotASubvolume from some and the same words by hand in another): "Cannot <paramref name="phrased"/>: ...".
        /// </summary>
        internal static FileOperationException PlaceholderRefusal(OpenFile file, string phrased) => new(
            FileErrorKind.SubvolumePlaceholder,
            Errno.ENOTTY,
            "statx",
            file.Path,
            $"Cannot {phrased}: {PlaceholderIs}. It is no subvolume and no real directory: nothing can be made in it. Nothing was changed. Snapshot the nested subvolume of the source separately if the copy needs it; this empty directory can be removed with Remove-Item.");

        /// <summary>Throws the NotSupported error for a file that is not on btrfs (<paramref name="because"/> says what only btrfs has), and SubvolumePlaceholder for the empty directory standing in for a nested subvolume in a snapshot.</summary>
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

            if (IsPlaceholder(file.Status, file.FileSystem.Kind))
            {
                // btrfs gives this directory no ioctls at all (ENOTTY): say what it is instead.
                throw PlaceholderRefusal(file, FileGuards.Phrase(what, file.Path));
            }
        }
    }
}
