namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// Carries an inode's identity-free metadata to its copy: owner and group, mode, extended
    /// attributes (POSIX ACLs, security labels and capabilities included), usage flags, and access
    /// and modification times, in the order that keeps each one (chown clears setuid bits and file
    /// capabilities, so it comes first; times come last).
    /// </summary>
    internal static class MetadataCopy
    {
        /// <summary>The POSIX access ACL's extended attribute.</summary>
        internal const string AccessAcl = "system.posix_acl_access";

        /// <summary>
        /// Owner, group, mode and POSIX access ACL; <paramref name="includeXattrs"/>: every other extended
        /// attribute too; then the usage flags and the times.
        /// </summary>
        internal static void Copy(OpenFile source, SafeFileDescriptor target, string targetLabel, InodeFlags targetFlags, InodeFlags sourceFlags, bool includeXattrs = true, IReadOnlyCollection<string>? skipXattrs = null)
        {
            FileStatus st = source.Status;
            Metadata.SetOwner(
                target,
                st.Uid,
                st.Gid,
                source.Path,
                "Cannot give the copy the owner and group of",
                st.Uid != Metadata.FileSystemUserId
                    ? "Only root can rewrite a file owned by someone else. The original is unchanged."
                    : $"It is this user's, but its group (gid {st.Gid}) is not one of this user's groups, and only root or a member may give a file that group. The original is unchanged.");
            CopyModeAndAcl(source.Handle, st, source.Path, target, "the copy", "The original is unchanged.");
            foreach (string name in includeXattrs ? Xattrs.List(source.Handle, source.Path) : new List<string>())
            {
                if (skipXattrs?.Contains(name) == true || name == AccessAcl)
                {
                    continue;
                }

                // Null: removed meanwhile.
                if (Xattrs.Get(source.Handle, name, source.Path) is byte[] value)
                {
                    Xattrs.Set(target, name, value, source.Path, $"Cannot copy the extended attribute '{name}' of", "The original is unchanged.");
                }
            }

            InodeFlags carried = (targetFlags & ~InodeAttributes.Carried) | (sourceFlags & InodeAttributes.Carried);
            if (carried != targetFlags)
            {
                InodeAttributes.Set(target, targetLabel, carried);
            }

            Metadata.SetTimes(target, st.AccessTime, st.ModifyTime, source.Path, "Cannot give the copy the timestamps of", "The original is unchanged.");
        }

        /// <summary>
        /// The mode (of <paramref name="st"/>) and the access ACL of <paramref name="from"/> on <paramref name="target"/>,
        /// a new file: an access ACL the new file got from its directory's default ACL is removed first, so the
        /// target admits exactly whom the original admits (never more). <paramref name="what"/> names the target in
        /// errors; <paramref name="advice"/> ends them.
        /// </summary>
        internal static void CopyModeAndAcl(SafeFileDescriptor from, in FileStatus st, string path, SafeFileDescriptor target, string what, string advice)
        {
            byte[]? acl = Xattrs.Get(from, AccessAcl, path);
            Xattrs.TryRemove(target, AccessAcl);
            Metadata.SetMode(target, st.Permissions, path, $"Cannot give {what} the mode of", advice);
            if (acl is not null)
            {
                Xattrs.Set(target, AccessAcl, acl, path, $"Cannot give {what} the access ACL of", advice);
            }
        }
    }
}
