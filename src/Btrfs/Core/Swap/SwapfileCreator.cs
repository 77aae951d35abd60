namespace Btrfs.Core
{
    using System;
    using System.IO;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>How to make a swapfile.</summary>
    public sealed record SwapfileOptions
    {
        /// <summary>Replace an existing file that is not an active swapfile.</summary>
        public bool Force { get; init; }

        /// <summary>The swap area's label (up to 16 bytes), as mkswap -L.</summary>
        public string? Label { get; init; }

        /// <summary>The swap area's UUID; a random one when null.</summary>
        public Guid? Uuid { get; init; }

        /// <summary>Replacing a file where no write lease can prove that nobody has it open: rely on the /proc scan alone.</summary>
        public bool AssumeNotInUse { get; init; }

        /// <summary>Told what was done besides (a killed run's leftover removed), for a warning.</summary>
        public Action<string>? Notice { get; init; }
    }

    /// <summary>
    /// New-BtrfsSwapfile's Core: btrfs(5)'s sequence done in one place, in the order that works — an
    /// empty file, NOCOW set and read back (btrfs), the whole size preallocated, mode 0600, the swap
    /// header written (mkswap's layout), fsync — as an unnamed file that gets its name only when it is
    /// complete. Refuses what cannot hold a working swapfile before anything is created.
    /// </summary>
    public static class SwapfileCreator
    {
        /// <summary>The smallest swap area mkswap makes: 10 pages.</summary>
        public const int MinimumPages = 10;

        /// <summary>Checks everything that refuses the swapfile; throws <see cref="FileOperationException"/>. Returns the size it will have (whole pages).</summary>
        public static long Check(string path, long size, SwapfileOptions options)
        {
            ArgumentNullException.ThrowIfNull(options);
            int pageSize = Environment.SystemPageSize;
            long pages = size / pageSize;
            if (pages < MinimumPages)
            {
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.EINVAL, "mkswap", path, $"Cannot make '{path}' a swapfile of {size} bytes: a swap area needs at least {MinimumPages} pages ({MinimumPages * pageSize} bytes).");
            }

            if (pages - 1 > SwapHeader.MaximumLastPage)
            {
                // The header counts pages in 32 bits (before: an overflow after the whole size was preallocated; found by a hostile review).
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.EINVAL, "mkswap", path, $"Cannot make '{path}' a swapfile of {SizeFormatter.Format(size)}: a swap area holds at most {SwapHeader.MaximumLastPage + 1L} pages ({SizeFormatter.Format((SwapHeader.MaximumLastPage + 1L) * pageSize)} here; its header counts pages in 32 bits). Make several smaller swapfiles. Nothing was created.");
            }

            string full = System.IO.Path.GetFullPath(path);
            if (options.Label is { } controlled && System.Linq.Enumerable.Any(controlled, char.IsControl))
            {
                // A newline or other control character in the header would be shown by blkid and in fstab lines (LABEL=).
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.EINVAL, "mkswap", full, $"Cannot label the swapfile with '{controlled.ReplaceLineEndings(" ")}': it holds a control character (a newline, a tab...), which blkid would show and an fstab LABEL= line could not hold. Give a label of printable characters. Nothing was created.");
            }

            if (options.Label is { } spaced && spaced.EndsWith(' '))
            {
                // blkid and swaplabel drop spaces at a label's end: "  " showed as no label, and swapon LABEL= found nothing (a hostile test).
                string shown = spaced.TrimEnd(' '); // libblkid's rtrim: ASCII whitespace (the rest of it is control characters, refused above)
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.EINVAL, "mkswap", full, $"Cannot label the swapfile with '{spaced}': it ends with whitespace, which blkid and swaplabel drop, so it would show as {(shown.Length == 0 ? "no label at all" : $"'{shown}'")} and swapon LABEL='{spaced}' would not find it. Give the label without the whitespace at its end. Nothing was created.");
            }

            if (options.Label is { } broken && !IsWellFormed(broken))
            {
                // Half of a surrogate pair has no UTF-8 form: it would be written as U+FFFD, not the label asked for (a hostile test).
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.EINVAL, "mkswap", full, "Cannot label the swapfile: the label holds half of a UTF-16 surrogate pair (a character cut in two), which has no UTF-8 form and would be written as U+FFFD instead. Give the whole character. Nothing was created.");
            }

            if (options.Label is { } label && System.Text.Encoding.UTF8.GetByteCount(label) > 16)
            {
                // The header's label field is 16 bytes: a longer label would be cut, maybe mid-character.
                int bytes = System.Text.Encoding.UTF8.GetByteCount(label);
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.EINVAL, "mkswap", full, $"Cannot label the swapfile '{label}': the label is {bytes} bytes in UTF-8 and the swap header holds 16 (characters outside ASCII take 2 to 4 bytes each). Give a shorter label. Nothing was created.");
            }

            string dirPath = System.IO.Path.GetDirectoryName(full) ?? "/";
            using (OpenFile dir = OpenDirectory(dirPath, full))
            {
                if (dir.FileSystem.Kind is not (FileSystemKind.Btrfs or FileSystemKind.Xfs or FileSystemKind.Ext4))
                {
                    throw new FileOperationException(FileErrorKind.NotSupported, Errno.EOPNOTSUPP, "swapon", full, $"Cannot make '{full}' a swapfile: {dir.FileSystem.DisplayName} cannot hold one (swapfiles work on btrfs, xfs and ext4). Nothing was created.");
                }

                FileGuards.ThrowIfReadOnly(dir, "create a swapfile in {0}");

                // Said before any prompt and by -WhatIf (before: "What if: Create", then EACCES from O_TMPFILE. A hostile test).
                // A permission lacking only (EACCES): an immutable or append-only directory (EPERM) is said as such below (a review).
                if (Files.WriteAndSearchRefusal(dir.Handle, ".") == Errno.EACCES)
                {
                    throw new FileOperationException(FileErrorKind.AccessDenied, Errno.EACCES, "faccessat", full, $"Cannot create '{full}': this user may not write in the directory '{dirPath}' (its owner is uid {dir.Status.Uid}, mode {Convert.ToString(dir.Status.Permissions & 0xFFF, 8)}). Swapfiles are made by root. Nothing was created.");
                }

                if (dir.FileSystem.Kind == FileSystemKind.Btrfs)
                {
                    CheckBtrfs(dir, full);
                }

                long available = dir.AvailableBytes(pages * pageSize);
                if (available < pages * pageSize)
                {
                    throw new FileOperationException(FileErrorKind.InsufficientSpace, Errno.ENOSPC, "statfs", full, $"Cannot make '{full}' a swapfile of {SizeFormatter.Format(pages * pageSize)}: only {SizeFormatter.Format(available)} is free. Nothing was created.");
                }
            }

            if (FileStatus.OfPath(full, followLinks: false) is FileStatus existing)
            {
                if (existing.IsSymbolicLink)
                {
                    throw OpenFile.SymbolicLinkRefused(full);
                }

                if (SwapTable.Read().Contains(existing))
                {
                    throw new FileOperationException(FileErrorKind.ActiveSwapfile, Errno.EBUSY, "/proc/swaps", full, $"Cannot replace '{full}': it is an active swapfile (listed in /proc/swaps), and an active swapfile is never replaced, even with -Force. Run swapoff on it first.");
                }

                // What it is first: -Force replaces a file, never anything else, so it is no advice for a directory.
                if (!existing.IsRegular)
                {
                    throw new FileOperationException(FileErrorKind.NotRegularFile, 0, "stat", full, $"Cannot create '{full}': it is {OpenFile.DescribeType(existing.Mode)}, not a regular file, and only a regular file is ever replaced (with -Force). Give the path of the swapfile itself{(existing.IsDirectory ? $", such as '{System.IO.Path.Combine(full, "swapfile")}'" : string.Empty)}. It was left as it is.");
                }

                if (!options.Force)
                {
                    throw new FileOperationException(FileErrorKind.AlreadyExists, Errno.EEXIST, "stat", full, $"Cannot create '{full}': it exists, and an existing file is never replaced without -Force. It was left as it is.");
                }

                // -Force replaces an existing file, never one in use (its writes would go to the old inode).
                using OpenFile old = OpenFile.Open(full, OpenOptions.NoFollow);
                FileGuards.ThrowIfUnchangeable(old, InodeAttributes.Get(old.Handle, full), "replace {0}");
                FileGuards.ThrowIfDirectoryKeepsItsNames(old, "replace {0}");
                FileGuards.ThrowIfInUse(old, "replace {0}", options.AssumeNotInUse);
                if (old.Status.Links > 1)
                {
                    // As New-BtrfsReflink -Force and ConvertTo-NoCow say it. (Before: replaced without a word.)
                    options.Notice?.Invoke($"'{full}' has {old.Status.Links} hard links: only this name becomes the swapfile; the other {old.Status.Links - 1} keep the old data.");
                }
            }

            return pages * pageSize;
        }

        /// <summary>Whether <paramref name="text"/> is whole UTF-16: no half of a surrogate pair.</summary>
        private static bool IsWellFormed(string text)
        {
            ReadOnlySpan<char> rest = text;
            while (!rest.IsEmpty)
            {
                if (System.Text.Rune.DecodeFromUtf16(rest, out _, out int used) != System.Buffers.OperationStatus.Done)
                {
                    return false;
                }

                rest = rest[used..];
            }

            return true;
        }

        /// <summary>Creates the swapfile (after <see cref="Check"/>) and returns its Test-BtrfsSwapfile -Detailed status.</summary>
        public static SwapfileStatus Create(string path, long size, SwapfileOptions options)
        {
            // Checked again (things change), without saying again what the check said (a hard link's notice came twice).
            long bytes = Check(path, size, options with { Notice = null });
            int pageSize = Environment.SystemPageSize;
            string full = System.IO.Path.GetFullPath(path);
            string dirPath = System.IO.Path.GetDirectoryName(full) ?? "/";
            string name = System.IO.Path.GetFileName(full);
            using OpenFile? existing = FileStatus.OfPath(full, followLinks: false) is not null ? OpenFile.Open(full, OpenOptions.NoFollow) : null;

            using SafeFileDescriptor dir = DirectoryHandle.OpenFollowingTrustedLinks(dirPath, Metadata.FileSystemUserId, (at, why) => OpenFile.ThroughAnotherUsersLink(full, at, why));

            using (TemporaryFile temp = TemporaryFile.Create(dir, dirPath, name, forceNamed: false, mode: 0x180))
            {
                if (FileSystemTypeOf(dirPath).Kind == FileSystemKind.Btrfs)
                {
                    // chattr +C while the file is empty, and read back: after fallocate it would be ignored.
                    InodeFlags flags = InodeAttributes.Get(temp.Handle, full);
                    InodeFlags after = InodeAttributes.Set(temp.Handle, full, (flags | InodeFlags.NoCow) & ~(InodeFlags.Compress | InodeFlags.NoCompress));
                    if ((after & InodeFlags.NoCow) == 0)
                    {
                        throw new FileOperationException(FileErrorKind.NoCowNotApplied, 0, "FS_IOC_SETFLAGS", full, $"Cannot create '{full}': the new empty file did not take the NOCOW attribute, without which swapon refuses it. Nothing was created.");
                    }
                }

                if (Files.TryAllocate(temp.Handle, 0, bytes, keepSize: false) is int allocateErrno and not 0)
                {
                    throw Failure(allocateErrno, "fallocate", full, existing is not null, $"allocate the {SizeFormatter.Format(bytes)} of");
                }

                Metadata.SetMode(temp.Handle, 0x180, full, "Cannot set the mode of", "Nothing was created.");
                byte[] header = SwapHeader.Build(pageSize, bytes / pageSize, options.Uuid ?? Guid.NewGuid(), options.Label);
                if (Files.TryWriteAt(temp.Handle, header, 0) is int writeErrno and not 0)
                {
                    throw Failure(writeErrno, "pwrite", full, existing is not null, "write the swap header of");
                }

                if (Files.TrySync(temp.Handle) is int syncErrno and not 0)
                {
                    throw Failure(syncErrno, "fsync", full, existing is not null, "sync");
                }

                if (existing is not null)
                {
                    foreach (StaleFile stale in temp.RemoveStale())
                    {
                        options.Notice?.Invoke(stale.Describe(dirPath)); // what a run killed in the grace after such a replacement left here
                    }

                    temp.Replace(existing, name, full, "replace {0}", options.AssumeNotInUse, () =>
                    {
                        if (FileStatus.OfAt(dir, name) is not FileStatus now || !now.SameInode(existing.Status))
                        {
                            throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "statx", full, $"Cannot replace '{full}': another file took its name meanwhile. It was left as it is; the new swapfile was removed.");
                        }
                    });
                }
                else
                {
                    temp.LinkAsNew(name, full);
                }
            }

            _ = Files.TrySync(dir);
            return SwapfileInspector.Inspect(full);
        }

        /// <summary>
        /// The path to give swapon(2) for a swapfile to be made at <paramref name="path"/> and activated: swapon
        /// opens it by name after the module made it, so its directory must be one no other user can change
        /// (<see cref="PrivateDirectory"/>; UnsafeDirectory otherwise, before anything is made). The canonical path.
        /// </summary>
        internal static string CheckActivation(string path)
        {
            if (!Processes.HasSysAdmin())
            {
                throw new FileOperationException(
                    FileErrorKind.AccessDenied,
                    Errno.EPERM,
                    "swapon",
                    path,
                    $"Cannot make '{path}' a swapfile and activate it: swapon needs root (CAP_SYS_ADMIN), which this process does not have. Nothing was created or replaced. Run as root, or leave out -Activate and activate it as root later (swapon).");
            }

            string dir = System.IO.Path.GetDirectoryName(path) is { Length: > 0 } d ? d : "/", name = System.IO.Path.GetFileName(path);
            (string canonical, _) = PrivateDirectory.Check(
                dir,
                $"The swapfile '{path}'",
                "under its name between its making and swapon (which opens it by name), and have memory swapped to a file of theirs",
                "Make a swapfile to activate in a directory only you (or root) can write to, on a path of directories owned by you or root; or make it without -Activate, check it, and activate it yourself.",
                path,
                "Give a path in an existing directory.");
            return canonical == "/" ? "/" + name : canonical + "/" + name;
        }

        /// <summary>
        /// A failure while making the new file (its space, header or sync): its own words (no "original" where there is
        /// none), and what is left: nothing new, and an existing file as it was.
        /// </summary>
        private static FileOperationException Failure(int errno, string operation, string full, bool replacing, string what) =>
            FileOperationException.FromErrno(
                errno,
                operation,
                full,
                $"Cannot {what} the new swapfile",
                (errno is Errno.ENOSPC or Errno.EDQUOT ? FileOperationException.NoRoom(errno) + " or ask for less. " : string.Empty)
                    + (replacing ? "The existing file is as it was, and nothing new was left." : "Nothing was created."));

        /// <summary>swapon(2), with a priority when given. Throws <see cref="FileOperationException"/> with the kernel's reason.</summary>
        public static void Activate(string path, int? priority)
        {
            Swap.On(path, priority, "The swapfile was created, but the kernel did not activate", "Test-BtrfsSwapfile -Detailed and the kernel log (dmesg) say why.");
        }

        private static void CheckBtrfs(OpenFile dir, string full)
        {
            ulong devices = BtrfsSearch.FileSystemInfo(dir)?.NumDevices ?? 1;
            if (devices > 1)
            {
                throw new FileOperationException(FileErrorKind.NotSupported, Errno.EINVAL, "BTRFS_IOC_FS_INFO", full, $"Cannot make '{full}' a swapfile: its btrfs filesystem has {devices} devices, and the kernel accepts a swapfile only if all its extents happen to lie on one of them. Use a single-device filesystem. Nothing was created.");
            }

            if (!BtrfsSearch.DataIsSingleProfile(dir))
            {
                throw new FileOperationException(FileErrorKind.NotSupported, Errno.EINVAL, "BTRFS_IOC_SPACE_INFO", full, $"Cannot make '{full}' a swapfile: the filesystem's data is not (only) in the single profile, and the kernel refuses swapfiles in RAID or DUP data. Nothing was created.");
            }
        }

        private static OpenFile OpenDirectory(string dirPath, string full)
        {
            try
            {
                OpenFile dir = OpenFile.Open(dirPath, OpenOptions.AllowDirectory | OpenOptions.TrustedLinksOnly);
                if (!dir.IsDirectory)
                {
                    dir.Dispose();
                    throw new FileOperationException(FileErrorKind.NotFound, Errno.ENOTDIR, "stat", full, $"Cannot create '{full}': '{dirPath}' is not a directory.");
                }

                return dir;
            }
            catch (FileOperationException ex) when (ex.Kind is FileErrorKind.NotFound && ex.Path == dirPath)
            {
                throw new FileOperationException(FileErrorKind.NotFound, ex.Errno, "stat", full, $"Cannot create '{full}': its directory '{dirPath}' does not exist.");
            }
            catch (FileOperationException ex) when (ex.Path == dirPath)
            {
                throw DirectoryHandle.CannotCreateIn(ex, dirPath, full, $"create '{full}'");
            }
        }

        private static FileSystemType FileSystemTypeOf(string dirPath)
        {
            using OpenFile dir = OpenFile.Open(dirPath, OpenOptions.AllowDirectory | OpenOptions.TrustedLinksOnly);
            return dir.FileSystem;
        }
    }
}
