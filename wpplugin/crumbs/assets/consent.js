/**
 * Bridges the WP Consent API to the Crumbs library: with "require consent" on, the library sends
 * nothing until crumbs('consent', true). Loaded only when the WP Consent API is active.
 */
( function () {
	'use strict';
	var category = window.crumbsConsentCategory || 'statistics';

	function crumbs() {
		// The library may still be loading (it is async): queue the call through its stub.
		window.crumbs =
			window.crumbs ||
			function () {
				( window.crumbs.q = window.crumbs.q || [] ).push( arguments );
			};
		window.crumbs.apply( null, arguments );
	}

	if ( typeof window.wp_has_consent === 'function' && window.wp_has_consent( category ) ) {
		crumbs( 'consent', true );
	}

	document.addEventListener( 'wp_listen_for_consent_change', function ( e ) {
		var changed = ( e && e.detail ) || {};
		if ( Object.prototype.hasOwnProperty.call( changed, category ) ) {
			crumbs( 'consent', changed[ category ] === 'allow' );
		}
	} );
} )();
