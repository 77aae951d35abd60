namespace Btrfs.Core
{
    using System;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// The guard for a file the module makes and then has something else open by name (SQLite a database and
    /// its companions, the kernel's swapon a swapfile): its directory must be one no other user can change.
    /// </summary>
    internal static class PrivateDirectory
    {
        /// <summary>
        /// The canonical path of <paramref name="dir"/> (realpath), after checking that no user but the caller
        /// and root can change what it leads to: every directory on the way is owned by root or the caller, and
        /// one that others may write to is sticky (they cannot rename or remove what is not theirs in it); the
        /// directory itself no one else may write to at all, sticky or not (in /tmp another user could put a link
        /// or a file of theirs under a name that SQLite or the kernel opens by name afterwards: the -wal and -shm
        /// files, a swapfile given to swapon). Otherwise UnsafeDirectory, before anything is created (an ACL that
        /// lets another user write shows in the group bits). A lookup that fails or finds a link on the way is
        /// refused, never passed over.
        /// </summary>
        internal static (string Canonical, FileStatus Directory) Check(string dir, string subject, string danger, string advice, string path, string missingAdvice)
        {
            FileOperationException Unsafe(string at, string why) => new(
                FileErrorKind.UnsafeDirectory,
                0,
                "open",
                path,
                $"{subject} would be in '{dir}', and '{at}' {why}: another user could put a link {danger}. Nothing was created or changed. {advice}");

            uint me = Metadata.FileSystemUserId;
            ThrowIfAnotherUsersLink(dir, me, Unsafe);
            if (Files.RealPath(dir) is not string canonical)
            {
                // Missing (or unreadable): said as the directory's opening says it, before anything is created.
                try
                {
                    using SafeFileDescriptor missing = DirectoryHandle.Open(dir, missingAdvice);
                }
                catch (FileOperationException ex)
                {
                    throw DirectoryHandle.CannotCreateIn(ex, dir, path, "use " + char.ToLowerInvariant(subject[0]) + subject[1..], "Nothing was created or changed.");
                }

                throw Unsafe(dir, "could not be resolved to a path without links");
            }

            string[] names = canonical.Split('/', StringSplitOptions.RemoveEmptyEntries);
            string at = "/";
            FileStatus st = default;
            for (int i = -1; i < names.Length; i++)
            {
                at = i < 0 ? "/" : at.TrimEnd('/') + "/" + names[i];

                // Every lookup must succeed and find a directory: one that fails (renamed away meanwhile) or finds a
                // link (swapped in since realpath) is refused, never passed over.
                if (FileStatus.OfPath(at, followLinks: false) is not FileStatus found || !found.IsDirectory)
                {
                    throw Unsafe(at, "changed while it was being checked (renamed, or replaced by a link)");
                }

                st = found;
                bool last = i == names.Length - 1, othersWrite = (st.Permissions & Convert.ToUInt32("022", 8)) != 0, sticky = (st.Permissions & Convert.ToUInt32("1000", 8)) != 0;
                string? why = st.Uid != 0 && st.Uid != me ? $"belongs to user {st.Uid}"
                    : othersWrite && last ? $"can be written by other users (mode {Convert.ToString(st.Permissions, 8)})"
                    : othersWrite && !sticky ? $"can be written by other users and is not sticky (mode {Convert.ToString(st.Permissions, 8)})"
                    : null;
                if (why is not null)
                {
                    throw Unsafe(at, why);
                }
            }

            return (canonical, st);
        }

        /// <summary>
        /// Follows <paramref name="dir"/> as the kernel would, name by name, and refuses a symbolic link on the way
        /// (the ones links lead through included) that belongs to neither the caller nor root: its owner chooses
        /// where the file is made (where fs.protected_symlinks is 0, in a sticky directory too). The directories
        /// reached are checked afterwards, on the canonical path.
        /// </summary>
        private static void ThrowIfAnotherUsersLink(string dir, uint me, Func<string, string, FileOperationException> unsafeAt)
        {
            // The shared walk from descriptors, each link's owner checked as it is followed.
            FileOperationException? refused = null;
            try
            {
                using SafeFileDescriptor reached = DirectoryHandle.OpenFollowingTrustedLinks(dir, me, (at, why) => refused = unsafeAt(at, why));
            }
            catch (FileOperationException ex) when (!ReferenceEquals(ex, refused))
            {
                // Missing, unreadable, a loop or not a directory: realpath and the directory's opening say so next.
            }
        }
    }
}
