namespace Btrfs.Commands
{
    using System.Management.Automation;

    /// <summary>
    /// A piped object without PSPath bound to -Path by value (as when another of its properties, such as a numeric
    /// Length, bound first) is bound by its Path property, not by its text: PowerShell would
    /// otherwise make a path of the whole object ("@{Path=/vm.img; Length=4096}") once another of its properties
    /// fixed the parameter set (a hostile review: `Get-BtrfsExtent f | Select Path,LogicalOffset,Length |
    /// Get-BtrfsExtentOwner`). Strings, arrays and objects without a Path property pass unchanged. Piped values
    /// are used literally (see FileCmdletBase), never expanded as patterns.
    /// </summary>
    internal sealed class PipedPathAttribute : ArgumentTransformationAttribute
    {
        /// <inheritdoc/>
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            if (inputData is PSObject wrapped && wrapped.BaseObject is not (string or System.Array)
                && wrapped.Properties["PSPath"] is null // one with PSPath binds -LiteralPath by it (this module's objects, FileInfo)
                && wrapped.Properties["Path"] is { } property && property.Value is { } value
                && (value is string || (value is PSObject p && p.BaseObject is string)))
            {
                return value;
            }

            return inputData;
        }
    }
}
