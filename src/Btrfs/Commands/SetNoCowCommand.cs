namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>Set-NoCow: sets (or with -Disable clears) the NOCOW attribute on directories and empty files, and proves it took.</summary>
    [Cmdlet(VerbsCommon.Set, "NoCow", DefaultParameterSetName = LiteralPathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpLinks.Pages + "Set-NoCow.md")]
    [OutputType(typeof(NoCowStatus))]
    public sealed class SetNoCowCommand : RecursiveFileCmdletBase
    {
        /// <inheritdoc/>
        private protected override bool ProcessesDirectories => true;

        /// <summary>Clear the attribute instead of setting it.</summary>
        [Parameter]
        public SwitchParameter Disable { get; set; }



        /// <summary>Emit the Test-NoCow -Detailed object of each item changed.</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        private bool Enable => !Disable.IsPresent;

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            if (!Recursing)
            {
                using OpenFile item = NoCowAttribute.OpenForChange(path, out InodeFlags flags);
                ChangeOne(item, flags, skipNonEmpty: false);
                return;
            }

            long skipped = 0; // counted, not listed: memory does not grow with the tree
            ForEachInTree(path, entry =>
            {
                // Opened through the walk's descriptors: a directory swapped for a link is never followed.
                using OpenFile item = NoCowAttribute.OpenForChange(entry, out InodeFlags flags);
                if (ChangeOne(item, flags, skipNonEmpty: entry.Path != path) == NoCowChange.SkippedNotEmpty)
                {
                    skipped++;
                    WriteObject(NoCowInspector.Inspect(item));
                }
            });

            if (skipped > 0)
            {
                string convert = Enable ? "ConvertTo-NoCow -Recurse" : "ConvertFrom-NoCow -Recurse";
                WriteWarning($"{skipped} file(s) under '{path}' are not empty (a size above zero, data or holes) and were left as they are (btrfs only changes NOCOW on files of size zero); their Test-NoCow objects follow in the output. Use {convert} to rewrite them.");
            }
        }

        private NoCowChange ChangeOne(OpenFile item, InodeFlags flags, bool skipNonEmpty)
        {
            string path = item.Path;
            NoCowChange plan = NoCowAttribute.Check(item, flags, Enable, skipNonEmpty);
            switch (plan)
            {
                case NoCowChange.AlreadySet:
                    WriteVerbose($"'{path}' is already {(Enable ? "NOCOW" : "COW")}; nothing to do.");
                    break;
                case NoCowChange.SkippedNotEmpty:
                    WriteVerbose($"'{path}' holds data; left as it is.");
                    return plan;
                case NoCowChange.Changed:
                    string action = Enable ? "Set the NOCOW attribute (chattr +C)" : "Clear the NOCOW attribute (chattr -C)";
                    if (!Preferences.ShouldProcess(this, path, action))
                    {
                        return plan;
                    }

                    NoCowAttribute.Apply(item, flags, Enable);
                    WriteVerbose($"'{path}' is now {(Enable ? "NOCOW" : "COW")} (read back).");
                    break;
            }

            if (!Enable && item.IsDirectory && plan != NoCowChange.SkippedNotEmpty)
            {
                WarnIfNoDataCowMount(item);
            }

            if (PassThru.IsPresent)
            {
                WriteObject(NoCowInspector.Inspect(item));
            }

            return plan;
        }

        private readonly System.Collections.Generic.HashSet<string> fileSystemsLookedAt = new(System.StringComparer.Ordinal);

        /// <summary>
        /// -Disable on a directory of a btrfs mounted with nodatacow: its attribute is cleared (or was), but new files there
        /// are NOCOW all the same, because of the mount option. Said once per filesystem (before: "already COW; nothing to
        /// do", and Test-NoCow's NoCowInEffect still True; a hostile review).
        /// </summary>
        private void WarnIfNoDataCowMount(OpenFile dir)
        {
            // Once per filesystem: its subvolumes have devices of their own, its id is one.
            if (dir.FileSystem.Kind == FileSystemKind.Btrfs && fileSystemsLookedAt.Add(BtrfsSearch.FileSystemId(dir)?.ToString() ?? $"{dir.Status.DevMajor}:{dir.Status.DevMinor}")
                && MountTable.Current().For(dir) is { } mount && mount.HasOption("nodatacow"))
            {
                WriteWarning($"'{dir.Path}' has no NOCOW attribute now, but its filesystem is mounted with nodatacow (at '{mount.MountPoint}'): new files in it are NOCOW all the same. Remount without nodatacow for new files to be COW.");
            }
        }
    }
}
