namespace Btrfs.Core
{
    /// <summary>What a table groups an object under ("Directory:"), one rule for the views and for the cmdlets that write a directory's objects together.</summary>
    internal static class DirectoryLabel
    {
        /// <summary>
        /// The directory of <paramref name="path"/>; for an object without a path, its subvolume and why it has none
        /// (<paramref name="whyNoPath"/>; an object read back from an earlier version without it: its subvolume is not
        /// reachable under a mount); else null.
        /// </summary>
        internal static string? Of(string? path, object? subvolumeId, object? subvolumePath, object? whyNoPath = null) =>
            path is { Length: > 0 } ? System.IO.Path.GetDirectoryName(path) ?? path
            : subvolumeId is not null ? $"(subvolume {subvolumeId} {subvolumePath}: {(whyNoPath is string { Length: > 0 } why ? why : "not reachable under a mount")})"
            : null;
    }
}
