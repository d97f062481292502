// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICategoryRegistry} from "../EventTypes.sol";

/// @notice A category registry for tests: anyone sets anyone's category.
contract TestCategoryRegistry is ICategoryRegistry {
    mapping(address => uint8) public category;

    function setCategory(address account, uint8 cat) external {
        category[account] = cat;
    }

    function categoryOf(address buyer) external view returns (uint8) {
        return category[buyer];
    }
}
