// SPDX-License-Identifier: Apache-2.0
//
// ModelRegistry: the EVM side of ocra's model spec (docs/SPEC.md). An owner manages a set of
// publishers and a set of status reporters. A publisher publishes a model spec (the JSON text
// of docs/SPEC.md) under a model name; ocra reads the ModelPublished logs once their
// block is final, checks the publisher against its own allowlist too, and reports the outcome
// of each event back with reportStatus. The contract keeps no spec in storage: the logs are
// the record, which keeps a publish cheap.
pragma solidity ^0.8.20;

contract ModelRegistry {
    address public owner;
    mapping(address => bool) public isPublisher;
    mapping(address => bool) public isReporter;

    event ModelPublished(bytes32 indexed nameHash, address indexed publisher, string name, string spec);
    event StatusReported(bytes32 indexed eventKey, address indexed reporter, string status);
    event PublisherSet(address indexed account, bool allowed);
    event ReporterSet(address indexed account, bool allowed);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error NotOwner();
    error NotPublisher();
    error NotReporter();
    error EmptyName();
    error ZeroAddress();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    /// The deployer owns the registry and may publish and report.
    constructor() {
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
        _setPublisher(msg.sender, true);
        _setReporter(msg.sender, true);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function setPublisher(address account, bool allowed) external onlyOwner {
        _setPublisher(account, allowed);
    }

    function setReporter(address account, bool allowed) external onlyOwner {
        _setReporter(account, allowed);
    }

    /// Publishes the spec of model `name`; the name is also indexed by its keccak256.
    function publish(string calldata name, string calldata spec) external {
        if (!isPublisher[msg.sender]) revert NotPublisher();
        if (bytes(name).length == 0) revert EmptyName();
        emit ModelPublished(keccak256(bytes(name)), msg.sender, name, spec);
    }

    /// Reports what became of the event keyed eventKey (sha256 or keccak256 of its ocra id).
    function reportStatus(bytes32 eventKey, string calldata status) external {
        if (!isReporter[msg.sender]) revert NotReporter();
        emit StatusReported(eventKey, msg.sender, status);
    }

    function _setPublisher(address account, bool allowed) private {
        if (account == address(0)) revert ZeroAddress();
        isPublisher[account] = allowed;
        emit PublisherSet(account, allowed);
    }

    function _setReporter(address account, bool allowed) private {
        if (account == address(0)) revert ZeroAddress();
        isReporter[account] = allowed;
        emit ReporterSet(account, allowed);
    }
}
