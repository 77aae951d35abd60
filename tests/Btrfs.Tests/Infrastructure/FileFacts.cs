namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.IO;
    using System.Linq;
    using System.Security.Cryptography;
    using Btrfs.Kernel;

    /// <summary>
    /// Everything a refusal must leave alone, read from outside the module: content hash, size,
    /// inode, mode, owner, times (stat), attributes (lsattr) and allocated blocks.
    /// </summary>
    internal sealed record FileFacts(string Sha256, long Size, string Stat, string Lsattr)
    {
        internal static FileFacts Of(string path) => new(
            Hash(path),
            new FileInfo(path).Length,
            Shell.Run("stat", "-c", "%i %a %u %g %h %b %Y.%y %Z", path).Trim(),
            Attributes(path));

        /// <summary>
        /// Times (access time too), inode, mode, owner, group and allocated blocks, read with stat alone: what a refusal
        /// must leave where <see cref="Of"/> would not do (it reads the data, which moves the access time).
        /// </summary>
        internal static string Stamp(string path) => Shell.Run("stat", "-c", "%X %Y %Z %i %a %u %g %b", path).Trim();

        internal static string Hash(string path)
        {
            using FileStream fs = File.OpenRead(path);
            return Convert.ToHexString(SHA256.HashData(fs));
        }

        /// <summary>The attribute letters lsattr prints (e.g. "---------------C------").</summary>
        internal static string Attributes(string path) => Shell.Run("lsattr", "-d", path).Split(' ', 2)[0];

        internal static bool HasNoCow(string path) => Attributes(path).Contains('C', StringComparison.Ordinal);

        /// <summary>Every name in a directory, hidden ones included, sorted.</summary>
        internal static string[] Listing(string dir) =>
            Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).OrderBy(n => n, StringComparer.Ordinal).ToArray()!;
    }
}
