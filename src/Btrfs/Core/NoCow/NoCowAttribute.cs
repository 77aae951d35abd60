namespace Btrfs.Core
{
    using Btrfs.Kernel;

    /// <summary>What <see cref="NoCowAttribute.Change"/> did.</summary>
    public enum NoCowChange
    {
        /// <summary>The attribute was changed and read back as asked.</summary>
        Changed,

        /// <summary>The attribute already was as asked; nothing was written.</summary>
        AlreadySet,

        /// <summary>A non-empty file, skipped as asked (btrfs ignores NOCOW changes on files with data).</summary>
        SkippedNotEmpty,
    }

    /// <summary>Set-NoCow's Core: sets or clears FS_NOCOW_FL on a directory or an empty file, and proves it took.</summary>
    public static class NoCowAttribute
    {
        /// <summary>The extended attribute `btrfs property set FILE compression ALGO` writes (btrfs refuses it on NOCOW files).</summary>
        internal const string CompressionProperty = "btrfs.compression";

        /// <summary>The file's compression property (zstd, lzo, zlib...), or null when it has none.</summary>
        internal static string? CompressionPropertyOf(OpenFile item) => Xattrs.TryGetText(item.Handle, CompressionProperty);

        /// <summary>
        /// Checks that the attribute can change, returning the open item and its flags; throws
        /// <see cref="FileOperationException"/> with the reason otherwise. Symbolic links are refused.
        /// </summary>
        internal static OpenFile OpenForChange(string path, out InodeFlags flags) =>
            Checked(OpenFile.Open(path, OpenOptions.AllowDirectory | OpenOptions.NoFollow), out flags);

        /// <summary>As <see cref="OpenForChange(string, out InodeFlags)"/>, for what the tree walker found (a directory through its own descriptor).</summary>
        internal static OpenFile OpenForChange(WalkEntry entry, out InodeFlags flags) =>
            Checked(
                entry.Handle is { } dir ? OpenFile.FromDirectory(dir, entry.Path) : OpenFile.Open(entry.Location!.Value, OpenOptions.AllowDirectory | OpenOptions.NoFollow),
                out flags);

        private static OpenFile Checked(OpenFile item, out InodeFlags flags)
        {
            try
            {
                ThrowUnlessBtrfs(item, "change the NOCOW attribute of");
                flags = InodeAttributes.Get(item.Handle, item.Path);
                return item;
            }
            catch
            {
                item.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Sets (<paramref name="enable"/>) or clears FS_NOCOW_FL on a directory or an empty regular
        /// file, then reads the flags back. A non-empty file is an error, or with
        /// <paramref name="skipNonEmpty"/> is left alone and reported as <see cref="NoCowChange.SkippedNotEmpty"/>.
        /// </summary>
        public static NoCowChange Change(string path, bool enable, bool skipNonEmpty = false)
        {
            using OpenFile item = OpenForChange(path, out InodeFlags flags);
            NoCowChange plan = Check(item, flags, enable, skipNonEmpty);
            if (plan == NoCowChange.Changed)
            {
                Apply(item, flags, enable);
            }

            return plan;
        }

        /// <summary>
        /// What <see cref="Apply"/> would do: <see cref="NoCowChange.Changed"/> when it can change the
        /// attribute, <see cref="NoCowChange.AlreadySet"/>, or <see cref="NoCowChange.SkippedNotEmpty"/>;
        /// throws <see cref="FileOperationException"/> when the change is refused.
        /// </summary>
        internal static NoCowChange Check(OpenFile item, InodeFlags flags, bool enable, bool skipNonEmpty)
        {
            bool isNoCow = (flags & InodeFlags.NoCow) != 0;
            if (isNoCow == enable)
            {
                return NoCowChange.AlreadySet;
            }

            string verb = Verb(item, enable);
            FileGuards.ThrowIfUnchangeable(item, flags, "change the NOCOW attribute of", walkedItem: true);

            if (!item.IsDirectory && item.Size > 0 && skipNonEmpty)
            {
                return NoCowChange.SkippedNotEmpty; // left with the warning (-Recurse), whoever owns it
            }

            // Said before any prompt and by -WhatIf (before: "What if: ...", then EPERM from FS_IOC_SETFLAGS. A hostile test).
            if (!FileGuards.MayChangeAttributes(item.Status))
            {
                throw new FileOperationException(
                    FileErrorKind.AccessDenied,
                    Errno.EPERM,
                    "FS_IOC_SETFLAGS",
                    item.Path,
                    $"Cannot {verb}: only its owner (uid {item.Status.Uid}) or root may change its attributes (the kernel asks for ownership or CAP_FOWNER). Run as its owner or as root. Nothing was changed.");
            }

            if (!item.IsDirectory && item.Size > 0)
            {
                string convert = enable ? "ConvertTo-NoCow" : "ConvertFrom-NoCow";
                throw new FileOperationException(
                    FileErrorKind.NoCowRequiresEmptyFile,
                    0,
                    "FS_IOC_SETFLAGS",
                    item.Path,
                    $"Cannot {verb}: it is not empty ({SizeFormatter.Format(item.Size)} long), and btrfs only changes NOCOW on an empty file (on others the kernel accepts the change and ignores it). Use {convert}, which rewrites the data into a new file safely. The file was not changed.");
            }

            if (enable && (flags & InodeFlags.Compress) != 0)
            {
                throw new FileOperationException(
                    FileErrorKind.NoCowConflictsWithCompression,
                    Errno.EINVAL,
                    "FS_IOC_SETFLAGS",
                    item.Path,
                    $"Cannot {verb}: it has the compression attribute (chattr +c), and NOCOW and compression exclude each other (NOCOW data is never compressed). Clear compression first (chattr -c), then run the command again. Nothing was changed.");
            }

            return NoCowChange.Changed;
        }

        /// <summary>Changes the attribute (after <see cref="Check"/> said it can) and proves it by reading it back.</summary>
        internal static void Apply(OpenFile item, InodeFlags flags, bool enable)
        {
            // "Do not compress" (chattr +m, inherited from a directory) goes without saying for NOCOW data, and btrfs
            // refuses the two together.
            InodeFlags wanted = enable ? (flags | InodeFlags.NoCow) & ~InodeFlags.NoCompress : flags & ~InodeFlags.NoCow;
            InodeFlags after = InodeAttributes.Set(item.Handle, item.Path, wanted);
            if (((after & InodeFlags.NoCow) != 0) != enable)
            {
                throw new FileOperationException(
                    FileErrorKind.NoCowNotApplied,
                    0,
                    "FS_IOC_SETFLAGS",
                    item.Path,
                    $"Cannot {Verb(item, enable)}: the kernel accepted the change but the attribute, read back, is {(enable ? "still off" : "still on")} (a file that got data in the meantime keeps its state). Check it with Test-NoCow -Detailed.");
            }
        }

        private static string Verb(OpenFile item, bool enable) => enable ? $"make '{item.Path}' NOCOW" : $"clear NOCOW on '{item.Path}'";

        /// <summary>Refuses filesystems without the NOCOW attribute, naming the filesystem.</summary>
        internal static void ThrowUnlessBtrfs(OpenFile item, string what)
        {
            if (item.FileSystem.Kind == FileSystemKind.Btrfs)
            {
                return;
            }

            string fs = item.FileSystem.DisplayName;
            string why = item.FileSystem.Kind switch
            {
                FileSystemKind.Xfs => "xfs already writes in place except where extents are shared with a reflink copy",
                FileSystemKind.Ext4 => "ext4 always writes in place",
                _ => "only btrfs has one",
            };
            throw new FileOperationException(
                FileErrorKind.NoCowNotSupported,
                Errno.EOPNOTSUPP,
                "FS_IOC_SETFLAGS",
                item.Path,
                $"Cannot {FileGuards.Phrase(what, item.Path)}: it is on {fs}, which has no NOCOW attribute ({why}). Nothing was changed.")
            {
                SameForFileSystem = true,
            };
        }
    }
}
