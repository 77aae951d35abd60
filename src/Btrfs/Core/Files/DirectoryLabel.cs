namespace Btrfs.Core
{
    /// <summary>What a table groups an object under ("Directory:"), one rule for the views and for the cmdlets that write a directory's objects together.</summary>
    internal static class DirectoryLabel
    {
        /// <summary>The directory of <paramref name="path"/>; for an object without a path (its subvolume is not reachable under a mount), that subvolume; else null.</summary>
        internal static string? Of(string? path, object? subvolumeId, object? subvolumePath) =>
            path is { Length: > 0 } ? System.IO.Path.GetDirectoryName(path) ?? path
            : subvolumeId is not null ? $"(subvolume {subvolumeId} {subvolumePath}: not reachable under a mount)"
            : null;
    }
}
