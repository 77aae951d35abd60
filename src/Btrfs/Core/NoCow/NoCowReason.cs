namespace Btrfs.Core
{
    using Btrfs.Kernel;

    /// <summary>
    /// The facts a NOCOW verdict rests on. <see cref="ReadOnlyWhere"/>: why the item cannot be changed where it is (a read-only
    /// snapshot or mount: "it is in the read-only snapshot ..."), said in place of the advice to change it.
    /// </summary>
    internal readonly record struct NoCowFacts(
        FileItemType ItemType,
        FileSystemType FileSystem,
        InodeFlags Flags,
        bool DirectoryIsNoCow,
        bool MountNoDataCow,
        string? CompressOption,
        long Size,
        long SharedBytes,
        bool NoDataSum = false,
        bool Placeholder = false,
        string? ReadOnlyWhere = null);

    /// <summary>Pure logic: the plain sentences Test-NoCow gives as Reason, one per fact (the verdict first).</summary>
    internal static class NoCowReason
    {
        internal static string[] Explain(in NoCowFacts f)
        {
            string verdict = Verdict(f);
            bool noCow = f.FileSystem.Kind == FileSystemKind.Btrfs && (f.Flags & InodeFlags.NoCow) != 0;
            return noCow && f.CompressOption is not null
                ? new[] { verdict, $"The {f.CompressOption} mount option does not apply to NOCOW files." }
                : new[] { verdict };
        }

        private static string Verdict(in NoCowFacts f)
        {
            string shared = SizeFormatter.Format(f.SharedBytes);
            if (f.FileSystem.Kind != FileSystemKind.Btrfs)
            {
                return f.FileSystem.Kind switch
                {
                    FileSystemKind.Xfs => "xfs has no NOCOW attribute; it writes in place except where extents are shared"
                        + (f.SharedBytes > 0 ? $" ({shared} of this file is shared with a reflink copy)." : "."),
                    FileSystemKind.Ext4 => "ext4 has no NOCOW attribute; it always writes in place (it has no copy-on-write).",
                    FileSystemKind.Tmpfs => "tmpfs has no NOCOW attribute; it keeps files in memory.",
                    _ => $"{f.FileSystem.DisplayName} has no NOCOW attribute; only btrfs has one.",
                };
            }

            bool noCow = (f.Flags & InodeFlags.NoCow) != 0;
            bool compressAttr = (f.Flags & InodeFlags.Compress) != 0;
            if (f.ItemType == FileItemType.Directory)
            {
                if (f.Placeholder)
                {
                    // (Before: "COW directory ...; use Set-NoCow", which then failed with ENOTTY; a hostile test.)
                    return "Not NOCOW, and it cannot be made so: " + BtrfsOnly.PlaceholderIs + ".";
                }

                if (noCow)
                {
                    return "NOCOW directory: files created in it from now on are NOCOW; files that were already there keep their state (ConvertTo-NoCow -Recurse converts them).";
                }

                if (f.MountNoDataCow)
                {
                    return compressAttr
                        ? "COW directory on a nodatacow mount: new files in it are NOCOW anyway, because of the mount option; they get its compression attribute (chattr +c) too, but NOCOW wins: nothing written to them is compressed."
                        : "COW directory on a nodatacow mount: new files in it are NOCOW anyway, because of the mount option.";
                }

                if (compressAttr)
                {
                    return Advise(f, "COW directory with the compression attribute (chattr +c): new files in it are compressed, and NOCOW and compression exclude each other", "clear +c first, then use Set-NoCow.");
                }

                if (f.DirectoryIsNoCow)
                {
                    return Advise(f, "COW directory in a NOCOW directory: it existed before its parent was marked", "use Set-NoCow on it.");
                }

                return Advise(f, "COW directory: new files in it are COW", "use Set-NoCow to mark it, so new files are NOCOW.");
            }

            if (noCow)
            {
                return f.SharedBytes > 0
                    ? $"NOCOW, but {shared} is shared with a reflink or snapshot: the next write to those ranges is copied once."
                    : "NOCOW: writes go in place (no checksums, no compression).";
            }

            if (compressAttr)
            {
                return Advise(f, "COW file with the compression attribute (chattr +c): NOCOW and compression exclude each other", "clear +c, then use ConvertTo-NoCow.");
            }

            if (f.Size == 0)
            {
                return f.ReadOnlyWhere is null ? "COW file, still empty: Set-NoCow makes it NOCOW now (once it has data, only ConvertTo-NoCow can)." : Advise(f, "COW file, still empty", string.Empty);
            }

            if (f.DirectoryIsNoCow)
            {
                return Advise(f, "COW file in a NOCOW directory (made before the directory was marked, moved in, or made COW with ConvertFrom-NoCow)", "ConvertTo-NoCow makes it NOCOW.");
            }

            if (f.MountNoDataCow)
            {
                return Advise(f, "COW file on a nodatacow mount: it was created before the mount option was in effect, copied in with its attributes, or made COW since (chattr -C, ConvertFrom-NoCow)", "ConvertTo-NoCow makes it NOCOW.");
            }

            if (f.NoDataSum)
            {
                return Advise(f, "COW file without checksums or compression (its inode has NODATASUM: it was made while the filesystem was mounted nodatasum): every write goes to new extents", "use ConvertTo-NoCow to make it NOCOW.");
            }

            string how = f.CompressOption is null ? "checksummed" : $"checksummed and compressed ({f.CompressOption})";
            return Advise(f, $"COW file: every write goes to new extents ({how})", "use ConvertTo-NoCow to make it NOCOW.");
        }

        /// <summary>
        /// A state and the advice to change it; where it cannot be changed (a read-only snapshot or mount), why not instead
        /// (before: "use ConvertTo-NoCow" for a file in a read-only snapshot, which ConvertTo-NoCow then refused; a hostile test).
        /// </summary>
        private static string Advise(in NoCowFacts f, string state, string advice) =>
            f.ReadOnlyWhere is null ? $"{state}; {advice}" : $"{state}; it cannot be changed here: {f.ReadOnlyWhere}.";
    }
}
