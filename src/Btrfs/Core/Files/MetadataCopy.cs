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
        internal static void Copy(OpenFile source, SafeFileDescriptor target, string targetLabel, InodeFlags targetFlags, InodeFlags sourceFlags, bool includeXattrs = true, IReadOnlyCollection<string>? skipXattrs = null)
        {
            FileStatus st = source.Status;
            Metadata.SetOwner(target, st.Uid, st.Gid, source.Path, "Cannot give the copy the owner and group of", "Only root can rewrite a file owned by someone else. The original is unchanged.");
            Metadata.SetMode(target, st.Permissions, source.Path, "Cannot give the copy the mode of", "The original is unchanged.");
            foreach (string name in includeXattrs ? Xattrs.List(source.Handle, source.Path) : new List<string>())
            {
                if (skipXattrs?.Contains(name) == true)
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
    }
}
