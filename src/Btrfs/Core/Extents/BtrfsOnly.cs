namespace Btrfs.Core
{
    using Btrfs.Kernel;

    /// <summary>The refusal every btrfs-only reader gives a file elsewhere.</summary>
    internal static class BtrfsOnly
    {
        /// <summary>Throws the NotSupported error for a file that is not on btrfs; <paramref name="because"/> says what only btrfs has.</summary>
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
        }
    }
}
