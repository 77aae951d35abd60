namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>Remove-BtrfsSubvolume: deletes a subvolume or snapshot (SNAP_DESTROY_V2), refusing one in use.</summary>
    [Cmdlet(VerbsCommon.Remove, "BtrfsSubvolume", DefaultParameterSetName = LiteralPathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpLinks.Pages + "Remove-BtrfsSubvolume.md")]
    [OutputType(typeof(BtrfsSubvolumeInfo))]
    public sealed class RemoveBtrfsSubvolumeCommand : FileCmdletBase
    {
        /// <summary>-WhatIf: each filesystem measured once per pipeline.</summary>
        private readonly Dictionary<Guid, SubvolumeSpace> measured = new();

        /// <summary>Also delete the subvolumes nested in it (deepest first); without it a subvolume with nested ones is refused.</summary>
        [Parameter]
        public SwitchParameter Recurse { get; set; }

        /// <summary>Wait until the kernel's cleaner has freed the space (SUBVOL_SYNC_WAIT), so the free space can be measured right after.</summary>
        [Parameter]
        public SwitchParameter Wait { get; set; }

        /// <summary>Write the deleted subvolumes' objects (as they were).</summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            using SubvolumeRemover plan = SubvolumeRemover.Plan(path, Recurse.IsPresent);
            string action = SubvolumeRemover.Describe(plan.Subvolume, plan.Nested.Count);
            if (WhatIfInEffect)
            {
                action += WouldFree(plan);
            }

            if (!ShouldProcess(plan.Subvolume.Path ?? path, action))
            {
                return;
            }

            plan.Run(Wait.IsPresent, deleted =>
            {
                WriteVerbose($"Deleted subvolume {deleted.Path ?? deleted.Name} (id {deleted.Id}).");
                if (PassThru.IsPresent)
                {
                    WriteObject(deleted);
                }
            }, StopToken);
        }

        /// <summary>", freeing N bytes" for -WhatIf (the subvolume and the nested ones going with it, as of the last commit), or why that is not known.</summary>
        private string WouldFree(SubvolumeRemover plan)
        {
            try
            {
                Guid fs = plan.FileSystem;
                if (!measured.TryGetValue(fs, out SubvolumeSpace? space))
                {
                    space = plan.MeasureFileSystem(StopToken);
                    measured[fs] = space;
                }

                ulong frees = plan.Frees(space);
                return string.Format(CultureInfo.InvariantCulture, ", which would free {0} ({1} bytes, as of commit {2})", SizeFormatter.Format((long)frees), frees, space.Generation);
            }
            catch (FileOperationException ex) when (ex.Kind == FileErrorKind.AccessDenied)
            {
                return " (what it would free can be measured by root only)";
            }
            catch (FileOperationException ex)
            {
                return " (what it would free could not be measured: " + ex.Message + ")";
            }
        }
    }
}
