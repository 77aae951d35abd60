namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;

    /// <summary>Test-NoCow: is NOCOW really in effect? One [bool] per item, or with -Detailed the facts and the reason.</summary>
    [Cmdlet(VerbsDiagnostic.Test, "NoCow", DefaultParameterSetName = LiteralPathSet, HelpUri = HelpLinks.Pages + "Test-NoCow.md")]
    [OutputType(typeof(bool), typeof(NoCowStatus))]
    public sealed class TestNoCowCommand : RecursiveFileCmdletBase
    {
        /// <summary>Emit a NoCowStatus object per item instead of a boolean.</summary>
        [Parameter]
        public SwitchParameter Detailed { get; set; }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            if (!Recursing)
            {
                Write(NoCowInspector.Inspect(path));
                return;
            }

            // The directory, then every directory and file below it, each opened through the walk's descriptors.
            ForEachInTree(path, entry =>
            {
                using RegularFile item = entry.Location is { } at
                    ? RegularFile.Open(at, OpenOptions.AllowDirectory | OpenOptions.NoFollow)
                    : RegularFile.Open(entry.Path, OpenOptions.AllowDirectory);
                Write(NoCowInspector.Inspect(item));
            });
        }

        private void Write(NoCowStatus status)
        {
            WriteVerbose($"{status.Path}: {status.ReasonText}");
            WriteObject(Detailed.IsPresent ? status : status.IsNoCow);
        }
    }
}
